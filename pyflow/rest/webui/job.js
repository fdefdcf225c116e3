// The job page: header with the Cancel button, the job graph, and its tabs (subtasks of a
// vertex, checkpoints, exceptions, configuration).

import {getJson, optional, seg} from "./api.js";
import {
  TERMINAL_JOB_STATES, badge, bytes, count, duration, facts, h, percent, section, table, tabs, time,
  unavailable,
} from "./dom.js";
import {jobGraph} from "./graph.js";

const TABS = [["subtasks", "Subtasks"], ["checkpoints", "Checkpoints"], ["exceptions", "Exceptions"],
  ["config", "Configuration"]];

// a job's plan does not change while it runs: asked for once per job
const plans = new Map();

async function planOf(jid) {
  if (!plans.has(jid)) plans.set(jid, (await getJson(`jobs/${seg(jid)}/plan`)).plan);
  return plans.get(jid);
}

/** The backpressure of each vertex, by id: {level, subtasks} or {missing: reason}. */
async function backpressureOf(jid, vertices) {
  const answers = await Promise.all(vertices.map((v) =>
    optional(`jobs/${seg(jid)}/vertices/${seg(v.id)}/backpressure`)));
  return new Map(vertices.map((v, i) => {
    const answer = answers[i];
    if (answer.missing !== undefined || !answer.data || !answer.data.backpressureLevel) {
      return [v.id, {missing: answer.missing || "no backpressure sample yet"}];
    }
    return [v.id, {level: answer.data.backpressureLevel, subtasks: answer.data.subtasks || []}];
  }));
}

export async function jobPage({jid, tab, vertex}, ctx) {
  tab = TABS.some(([key]) => key === tab) ? tab : "subtasks";
  const [job, plan] = await Promise.all([getJson(`jobs/${seg(jid)}`), planOf(jid)]);
  const vertices = job.vertices || [];
  const byId = new Map(vertices.map((v) => [v.id, v]));
  const backpressure = await backpressureOf(jid, vertices);
  const selected = byId.has(vertex) ? vertex : (plan.nodes && plan.nodes[0] ? plan.nodes[0].id : undefined);

  const base = `#/jobs/${seg(jid)}`;
  const graph = jobGraph({
    plan, vertices: byId, selected,
    backpressure: new Map([...backpressure].map(([id, bp]) => [id, bp.level || null])),
    href: (vid) => `${base}/subtasks/${seg(vid)}`,
  });

  let content;
  if (tab === "subtasks") content = await subtasksTab(jid, byId.get(selected), backpressure.get(selected));
  else if (tab === "checkpoints") content = await checkpointsTab(jid);
  else if (tab === "exceptions") content = await exceptionsTab(jid);
  else content = await configTab(jid);

  return {
    title: job.name,
    nodes: [
      header(job, ctx),
      section("Job graph", h("div", {class: "graph-scroll"}, graph),
        h("p", {class: "hint"}, "Click a vertex to see its subtasks.")),
      tabs(TABS.map(([key, title]) => [key, title, `${base}/${key}`]), tab),
      h("div", {class: "tab-content", "data-tab": tab}, content),
    ],
  };
}

function header(job, ctx) {
  const cancellable = !TERMINAL_JOB_STATES.has(job.state) && ctx.features["web-cancel"] !== false;
  return h("section", {class: "card job-header"},
    h("div", {class: "title-row"},
      h("h1", {id: "job-name"}, job.name),
      h("span", {id: "job-state"}, badge(job.state)),
      cancellable
        ? h("button", {id: "cancel-job", class: "danger", type: "button", "data-action": "cancel-job",
          "data-jid": job.jid, "data-name": job.name}, "Cancel job")
        : null),
    facts([
      ["Job ID", h("code", {}, job.jid)],
      ["Type", job["job-type"] || "–"],
      ["Start time", time(job["start-time"])],
      ["End time", time(job["end-time"])],
      ["Duration", duration(job.duration)],
      ["Tasks", taskCounts(job["status-counts"])],
    ]));
}

/** Non-zero subtask counts per state, as small badges. */
export function taskCounts(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0);
  if (!entries.length) return "–";
  return h("span", {class: "counts"}, entries.map(([state, n]) =>
    h("span", {class: `count state-${state.toLowerCase()}`, title: state}, `${n} ${state.toLowerCase()}`)));
}

async function subtasksTab(jid, vertex, backpressure) {
  if (!vertex) return section("Subtasks", h("p", {class: "empty"}, "This job has no vertices."));
  const details = await getJson(`jobs/${seg(jid)}/vertices/${seg(vertex.id)}`);
  const subtasks = details.subtasks || [];
  const bpBySubtask = new Map((backpressure && backpressure.subtasks || []).map((b) => [b.subtask, b]));
  const rows = subtasks.map((st) => {
    const bp = bpBySubtask.get(st.subtask);
    const tm = st["taskmanager-id"];
    const metrics = st.metrics || {};
    return [
      String(st.subtask), badge(st.status),
      tm ? h("a", {href: `#/taskmanagers/${seg(tm)}`}, tm) : "–",
      st["slot-index"] >= 0 ? String(st["slot-index"]) : "–",
      st.endpoint || st.host || "–",
      time(st["start-time"]), duration(st.duration),
      count(metrics["read-records"]), count(metrics["write-records"]),
      bytes(metrics["read-bytes"]), bytes(metrics["write-bytes"]),
      bp ? `${String(bp.backpressureLevel || "?").toUpperCase()} (busy ${percent(bp.busyRatio)})` : "–",
    ];
  });
  return section(`Subtasks of ${vertex.name}`,
    h("p", {class: "hint"}, `Vertex ${vertex.id}, parallelism ${details.parallelism}.`,
      backpressure && backpressure.missing
        ? h("span", {title: backpressure.missing}, " Backpressure not available.") : null),
    table(["Subtask", "Status", "TaskManager", "Slot", "Endpoint", "Start time", "Duration", "Records in",
      "Records out", "Bytes in", "Bytes out", "Backpressure"], rows, {id: "subtasks"}));
}

function stat(summary, key, format, completed) {
  const values = summary && summary[key];
  if (!values || !completed) return "–";
  return `${format(values.min)} / ${format(values.avg)} / ${format(values.max)}`;
}

async function checkpointsTab(jid) {
  const answer = await optional(`jobs/${seg(jid)}/checkpoints`);
  if (answer.missing !== undefined) {
    return section("Checkpoints", unavailable("Checkpoint statistics are", answer.missing));
  }
  const stats = answer.data || {};
  const counts = stats.counts || {};
  const latest = stats.latest || {};
  const completed = latest.completed;
  const failed = latest.failed;
  const restored = latest.restored;
  const history = stats.history || [];
  return [
    section("Checkpoint counts", facts([
      ["Triggered", count(counts.total)], ["In progress", count(counts.in_progress)],
      ["Completed", count(counts.completed)], ["Failed", count(counts.failed)],
      ["Restored", count(counts.restored)],
    ])),
    section("Latest",
      facts([
        ["Latest completed", completed
          ? `#${completed.id} at ${time(completed.latest_ack_timestamp)}, ${duration(completed.end_to_end_duration)}, `
            + `${bytes(completed.state_size ?? completed.checkpointed_size)}`
            + (completed.external_path ? `, ${completed.external_path}` : "")
          : "None"],
        ["Latest failed", failed
          ? `#${failed.id} at ${time(failed.failure_timestamp)}: ${failed.failure_message || "no message"}`
          : "None"],
        ["Latest restore", restored
          ? `#${restored.id} at ${time(restored.restore_timestamp)}`
            + (restored.external_path ? ` from ${restored.external_path}` : "")
          : "None"],
      ])),
    section("Summary (min / avg / max)", facts([
      ["End to end duration", stat(stats.summary, "end_to_end_duration", duration, counts.completed)],
      ["Checkpointed size", stat(stats.summary, "checkpointed_size", bytes, counts.completed)],
      ["Full state size", stat(stats.summary, "state_size", bytes, counts.completed)],
    ])),
    section("History",
      table(["ID", "Status", "Type", "Triggered", "Latest acknowledgement", "End to end duration",
        "Checkpointed size", "Acknowledged"],
      history.map((c) => [
        String(c.id), badge(c.status), c.is_savepoint ? "Savepoint" : "Checkpoint",
        time(c.trigger_timestamp), time(c.latest_ack_timestamp), duration(c.end_to_end_duration),
        bytes(c.checkpointed_size ?? c.state_size),
        `${count(c.num_acknowledged_subtasks)} / ${count(c.num_subtasks)}`,
      ]), {id: "checkpoint-history"})),
  ];
}

async function exceptionsTab(jid) {
  const info = await getJson(`jobs/${seg(jid)}/exceptions`);
  let entries = (info.exceptionHistory && info.exceptionHistory.entries) || [];
  if (!entries.length && info["root-exception"]) {
    entries = [{exceptionName: "Root exception", stacktrace: info["root-exception"], timestamp: info.timestamp}];
  }
  if (!entries.length) return section("Exceptions", h("p", {class: "empty"}, "No exceptions."));
  return section("Exceptions", entries.map((e, i) =>
    h("article", {class: "exception"},
      h("h3", {}, i === 0 ? "Root cause: " : "", h("code", {}, e.exceptionName || "Exception")),
      facts([
        ["Time", time(e.timestamp)],
        ["Task", e.taskName || "–"],
        ["Location", e.location || e.endpoint || "–"],
        ["TaskManager", e.taskManagerId ? h("a", {href: `#/taskmanagers/${seg(e.taskManagerId)}`},
          e.taskManagerId) : "–"],
      ]),
      h("pre", {class: "trace"}, e.stacktrace || ""))));
}

async function configTab(jid) {
  const info = await getJson(`jobs/${seg(jid)}/config`);
  const config = info["execution-config"] || {};
  const user = Object.entries(config["user-config"] || {}).sort(([a], [b]) => a.localeCompare(b));
  return [
    section("Execution configuration", facts([
      ["Execution mode", config["execution-mode"] || "–"],
      ["Restart strategy", config["restart-strategy"] || "–"],
      ["Job parallelism", String(config["job-parallelism"] ?? "–")],
      ["Object reuse", String(config["object-reuse-mode"] ?? "–")],
    ])),
    section("Job configuration", table(["Key", "Value"], user.map(([k, v]) => [h("code", {}, k), String(v)]),
      {id: "job-config"})),
  ];
}
