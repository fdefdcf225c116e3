// The Web UI's entry point: hash routing, the refresh loop, and the page-wide actions.
//
// Routes (after "#"):
//   /overview                                  cluster overview and jobs
//   /jobs/:jid[/subtasks[/:vid]|/checkpoints|/exceptions|/config]
//   /taskmanagers, /taskmanagers/:tmid, /taskmanagers/:tmid/logs/:file
//   /jobmanager[/config|/logs|/logs/:file]
// Every page is rebuilt from the REST API every `refresh-interval` ms (GET /config) and swapped in
// without flicker; log files are read once per visit (and on "Reload").

import {ApiError, ConnectionLost, getJson, patch, seg} from "./api.js";
import {h, patchChildren, section} from "./dom.js";
import {jobPage} from "./job.js";
import {jobManagerPage, overviewPage, taskManagerPage, taskManagersPage} from "./pages.js";

const ROUTES = [
  [/^\/?$|^\/overview$/, "overview", () => overviewPage()],
  [/^\/jobs\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?$/, "jobs",
    ([jid, tab, vertex], ctx) => jobPage({jid, tab, vertex}, ctx)],
  [/^\/taskmanagers$/, "taskmanagers", () => taskManagersPage()],
  [/^\/taskmanagers\/([^/]+)(?:\/logs\/([^/]+))?$/, "taskmanagers",
    ([tmid, file]) => taskManagerPage({tmid, file})],
  [/^\/jobmanager(?:\/(config|logs)(?:\/([^/]+))?)?$/, "jobmanager",
    ([tab, file]) => jobManagerPage({tab, file})],
];

const ctx = {interval: 3000, features: {}, version: ""};
const main = document.getElementById("main");
const banner = document.getElementById("banner");
let timer = null;
let generation = 0;
let configLoaded = false;

/** A path segment of the address, decoded (as typed, if it is not valid percent-encoding). */
function decode(segment) {
  try {
    return decodeURIComponent(segment);
  } catch (e) {
    return segment;
  }
}

function route() {
  const path = (location.hash.replace(/^#/, "") || "/overview").split("?")[0];
  for (const [pattern, nav, render] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      const params = match.slice(1).map((p) => (p === undefined ? undefined : decode(p)));
      return {nav, render: () => render(params, ctx)};
    }
  }
  return {nav: "", render: async () => ({title: "Not found", live: false,
    nodes: [section("Not found", h("p", {}, `The Web UI has no page ${path}. `,
      h("a", {href: "#/overview"}, "Go to the overview.")))]})};
}

async function loadConfig() {
  if (configLoaded) return;
  const config = await getJson("config");
  ctx.interval = Math.max(500, Number(config["refresh-interval"]) || 3000);
  ctx.features = config.features || {};
  ctx.version = config["flink-version"] || "";
  document.getElementById("version").textContent = ctx.version;
  configLoaded = true;
}

function showBanner(text) {
  banner.textContent = text || "";
  banner.hidden = !text;
}

/** Render the current route; `navigated` is true for a new page (not a refresh). */
async function show(navigated) {
  clearTimeout(timer);
  if (!navigated && document.hidden) {
    // nobody looks: ask the JobManager nothing until the page is visible again
    timer = setTimeout(() => show(false), ctx.interval);
    return;
  }
  const mine = ++generation;
  const current = route();
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.dataset.nav === current.nav);
  }
  if (navigated) main.setAttribute("aria-busy", "true");
  let live = true;
  try {
    await loadConfig();
    const page = await current.render();
    if (mine !== generation) return;
    live = page.live !== false;
    patchChildren(main, page.nodes);
    if (!live) {
      // a log file opens at its end, where the latest lines are
      for (const log of main.querySelectorAll("pre.log")) log.scrollTop = log.scrollHeight;
    }
    document.title = `${page.title} · pyflow`;
    showBanner("");
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof ConnectionLost) {
      // keep what is shown; say why it does not change
      showBanner(`Cannot reach the JobManager: ${e.message}. Retrying every ${ctx.interval / 1000} s.`);
    } else {
      showBanner("");
      const message = e instanceof ApiError ? e.message : `${e.name}: ${e.message}`;
      patchChildren(main, [section("Error", h("p", {class: "error", id: "page-error"}, message))]);
      if (!(e instanceof ApiError)) console.error(e);
    }
  } finally {
    if (mine === generation) {
      main.removeAttribute("aria-busy");
      if (live) timer = setTimeout(() => show(false), ctx.interval);
    }
  }
}

// ---- actions (delegated: the page is rebuilt on every refresh) ---------------------------------

const dialog = document.getElementById("confirm");

function confirmCancel(jid, name) {
  document.getElementById("confirm-text").textContent = `Cancel job "${name}" (${jid})? Its tasks are stopped `
    + "and its state is not kept.";
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "yes") return;
    try {
      await patch(`jobs/${seg(jid)}?mode=cancel`);
      showBanner("");
    } catch (e) {
      showBanner(`Cancelling job ${jid} failed: ${e.message}`);
    }
    show(false);
  };
  dialog.showModal();
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target.closest("[data-action]") : null;
  if (!target) return;
  if (target.dataset.action === "cancel-job") confirmCancel(target.dataset.jid, target.dataset.name);
  else if (target.dataset.action === "reload") show(false);
});

window.addEventListener("hashchange", () => show(true));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) show(false);
});
show(true);
