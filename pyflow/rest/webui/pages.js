// The cluster pages: overview, TaskManagers, one TaskManager with its logs, the JobManager.

import {getJson, getText, optional, seg} from "./api.js";
import {
  TERMINAL_JOB_STATES, badge, bytes, duration, facts, h, section, table, tabs, time, unavailable,
} from "./dom.js";
import {taskCounts} from "./job.js";

// a log longer than this shows its end only
const MAX_LOG_CHARS = 2 * 1024 * 1024;

function card(label, value, id) {
  return h("div", {class: "stat", id}, h("div", {class: "stat-value"}, String(value ?? "–")),
    h("div", {class: "stat-label"}, label));
}

function jobsTable(jobs, id) {
  const rows = jobs.map((job) => [
    h("a", {href: `#/jobs/${seg(job.jid)}`, class: "job-link", "data-jid": job.jid}, job.name),
    h("code", {}, job.jid), badge(job.state), time(job["start-time"]), time(job["end-time"]),
    duration(job.duration), taskCounts(job.tasks),
  ]);
  return table(["Name", "Job ID", "State", "Start time", "End time", "Duration", "Tasks"], rows,
    {id, class: "jobs"});
}

export async function overviewPage() {
  const [overview, jobs] = await Promise.all([getJson("overview"), getJson("jobs/overview")]);
  const all = (jobs.jobs || []).slice().sort((a, b) => b["start-time"] - a["start-time"]);
  const running = all.filter((j) => !TERMINAL_JOB_STATES.has(j.state));
  const completed = all.filter((j) => TERMINAL_JOB_STATES.has(j.state));
  return {
    title: "Overview",
    nodes: [
      h("section", {class: "stats"},
        card("TaskManagers", overview.taskmanagers, "stat-taskmanagers"),
        card("Task slots", overview["slots-total"], "stat-slots-total"),
        card("Available slots", overview["slots-available"], "stat-slots-available"),
        card("Running jobs", overview["jobs-running"], "stat-jobs-running"),
        card("Finished jobs", overview["jobs-finished"], "stat-jobs-finished"),
        card("Canceled jobs", overview["jobs-cancelled"], "stat-jobs-cancelled"),
        card("Failed jobs", overview["jobs-failed"], "stat-jobs-failed")),
      section("Running jobs", jobsTable(running, "running-jobs")),
      section("Completed jobs", jobsTable(completed, "completed-jobs")),
    ],
  };
}

export async function taskManagersPage() {
  const info = await getJson("taskmanagers");
  const rows = (info.taskmanagers || []).map((tm) => {
    const hw = tm.hardware || {};
    return [
      h("a", {href: `#/taskmanagers/${seg(tm.id)}`, class: "tm-link", "data-tmid": tm.id}, tm.id),
      tm.host || "–", String(tm.dataPort ?? "–"), String(tm.slotsNumber ?? "–"), String(tm.freeSlots ?? "–"),
      bytes(hw.physicalMemory), bytes(hw.freeMemory), bytes(hw.managedMemory),
      duration(tm.timeSinceLastHeartbeat),
    ];
  });
  return {
    title: "TaskManagers",
    nodes: [section("TaskManagers", table(["ID", "Host", "Data port", "Slots", "Free slots", "Physical memory",
      "Free memory", "Managed memory", "Since last heartbeat"], rows, {id: "taskmanagers"}))],
  };
}

function logsTable(logs, hrefOf) {
  // the newest first: the file a process writes now is at the top
  const sorted = logs.slice().sort((a, b) => (b.mtime || 0) - (a.mtime || 0)
    || String(a.name).localeCompare(String(b.name)));
  return table(["File", "Size", "Modified"], sorted.map((log) => [
    h("a", {href: hrefOf(log.name), class: "log-link"}, log.name), bytes(log.size), time(log.mtime),
  ]), {class: "logs"});
}

async function logsSection(path, hrefOf) {
  const answer = await optional(path);
  if (answer.missing !== undefined) return section("Logs", unavailable("Log files are", answer.missing));
  return section("Logs", logsTable((answer.data && answer.data.logs) || [], hrefOf));
}

/** One log file, fetched once (a log page is not refreshed: it would lose the reader's place). */
async function logView(path, name, back) {
  let text;
  try {
    text = await getText(path);
  } catch (e) {
    if (e.status === 404 || e.status === 405) {
      return section(`Log ${name}`, unavailable(`The log file ${name} is`, e.message));
    }
    throw e;
  }
  const cut = text.length > MAX_LOG_CHARS;
  return section(`Log ${name}`,
    h("div", {class: "toolbar"},
      h("a", {href: back}, "← all logs"),
      h("button", {type: "button", "data-action": "reload"}, "Reload"),
      h("span", {class: "hint"}, cut
        ? `Showing the last ${bytes(MAX_LOG_CHARS)} of ${bytes(text.length)}.`
        : `${bytes(text.length)}`)),
    h("pre", {class: "log", id: "log-text"}, cut ? text.slice(text.length - MAX_LOG_CHARS) : text));
}

export async function taskManagerPage({tmid, file}) {
  const base = `#/taskmanagers/${seg(tmid)}`;
  const api = `taskmanagers/${seg(tmid)}`;
  if (file !== undefined) {
    return {title: `${tmid} ${file}`, live: false,
      nodes: [await logView(`${api}/logs/${seg(file)}`, file, base)]};
  }
  const [tm, logs] = await Promise.all([getJson(api),
    logsSection(`${api}/logs`, (name) => `${base}/logs/${seg(name)}`)]);
  const hw = tm.hardware || {};
  const memory = tm.memoryConfiguration || {};
  return {
    title: tm.id,
    nodes: [
      section(`TaskManager ${tm.id}`, facts([
        ["Address", tm.path || "–"], ["Host", tm.host || "–"], ["Data port", String(tm.dataPort ?? "–")],
        ["Process id", String(tm.pid ?? "–")], ["Since last heartbeat", duration(tm.timeSinceLastHeartbeat)],
        ["Slots", `${tm.slotsNumber ?? "–"} (${tm.freeSlots ?? "–"} free)`],
        ["CPU cores", String(hw.cpuCores ?? "–")], ["Physical memory", bytes(hw.physicalMemory)],
        ["Free memory", bytes(hw.freeMemory)], ["Managed memory", bytes(memory.managedMemory ?? hw.managedMemory)],
        ["Network memory", bytes(memory.networkMemory)],
      ])),
      section("Allocated slots", table(["Slot", "Allocation", "Job"], (tm.allocatedSlots || []).map((slot) => [
        String(slot.index), h("code", {}, slot.allocationId),
        h("a", {href: `#/jobs/${seg(slot.jobId)}`}, slot.jobId),
      ]), {id: "allocated-slots"})),
      logs,
    ],
  };
}

export async function jobManagerPage({tab, file}) {
  const base = "#/jobmanager";
  const nav = tabs([["config", "Configuration", `${base}/config`], ["logs", "Logs", `${base}/logs`]],
    tab === "logs" ? "logs" : "config");
  if (tab === "logs" && file !== undefined) {
    return {title: `JobManager ${file}`, live: false,
      nodes: [nav, await logView(`jobmanager/logs/${seg(file)}`, file, `${base}/logs`)]};
  }
  if (tab === "logs") {
    return {title: "JobManager logs",
      nodes: [nav, await logsSection("jobmanager/logs", (name) => `${base}/logs/${seg(name)}`)]};
  }
  const config = await getJson("jobmanager/config");
  return {
    title: "JobManager",
    nodes: [nav, section("Configuration", table(["Key", "Value"],
      config.map((entry) => [h("code", {}, entry.key), entry.value]), {id: "jobmanager-config"}))],
  };
}
