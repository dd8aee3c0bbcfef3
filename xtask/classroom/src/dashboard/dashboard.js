// The room's dashboard: follows /api/events (one `room` event per change,
// the JSON of `classroom::room::View`) and draws the grid. Everything a
// learner sent is written with textContent, never as markup.
"use strict";

const key = new URLSearchParams(location.search).get("key") || "";
let projector = location.hash === "#projector";
let last = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function pad(number) {
  return String(number).padStart(2, "0");
}

/// What a learner is called on the screen: their name, or in projector mode
/// only their place in the room.
function called(learner, index) {
  return projector ? `Learner ${index + 1}` : learner.name;
}

function cell(lab) {
  const td = el("td", "cell");
  if (!lab) {
    td.classList.add("not-started");
    td.textContent = "";
    return td;
  }
  let mark;
  switch (lab.state) {
    case "passing": mark = ["passing", "✓"]; break;
    case "passing-edited-tests": mark = ["edited", "✓!"]; break;
    case "failing": mark = ["failing", `${lab.failed}/${lab.tests}`]; break;
    case "does-not-compile": mark = ["broken", "✗"]; break;
    case "started": mark = ["started", "…"]; break;
    default: mark = ["not-started", "·"];
  }
  td.classList.add(mark[0]);
  td.textContent = mark[1];
  if (lab.state !== "not-started") {
    const detail = [];
    if (lab.hints > 0) detail.push(`${lab.hints}h`);
    detail.push(`${lab.minutes}m`);
    td.append(el("small", "", detail.join(" ")));
  }
  if (lab.stuck) td.classList.add("stuck");
  const title = [];
  if (lab.failing_tests.length) title.push(`failing: ${lab.failing_tests.join(", ")}`);
  if (lab.stuck_minutes !== null) title.push(`${lab.stuck_minutes} min on the first one`);
  td.title = title.join("\n");
  return td;
}

function render(view) {
  last = view;
  document.body.classList.toggle("projector", projector);
  const learners = view.learners;
  const labs = view.labs;
  const passedAll = learners.filter((l) =>
    labs.length > 0 && labs.every((lab) => l.labs[lab.slug] && l.labs[lab.slug].state.startsWith("passing"))).length;
  document.getElementById("summary").textContent =
    `${learners.length} learner(s) · ${labs.length} lab(s) · ${passedAll} finished all`;
  document.getElementById("empty").hidden = learners.length > 0;

  const head = document.getElementById("grid-head");
  head.replaceChildren(el("th", "name", "learner"));
  for (const lab of labs) {
    const th = el("th", "", pad(lab.number));
    th.append(el("small", "", lab.slug));
    th.title = `${pad(lab.number)} ${lab.slug}`;
    head.append(th);
  }

  const body = document.getElementById("grid-body");
  const stuck = [];
  body.replaceChildren(...learners.map((learner, index) => {
    const tr = el("tr");
    const name = el("td", "name", called(learner, index));
    name.title = projector ? "" : `last update ${learner.seen_seconds_ago} s ago`;
    tr.append(name);
    for (const lab of labs) {
      const state = learner.labs[lab.slug];
      tr.append(cell(state));
      if (state && state.stuck) {
        stuck.push([called(learner, index), lab, state]);
      }
    }
    return tr;
  }));

  const passed = document.getElementById("grid-passed");
  passed.replaceChildren(el("td", "name", "passed"));
  const median = document.getElementById("grid-median");
  median.replaceChildren(el("td", "name", "median minutes"));
  for (const lab of labs) {
    passed.append(el("td", "", `${lab.passed}/${learners.length}`));
    const td = el("td", "", lab.median_minutes === null ? "–" : `${lab.median_minutes}m`);
    td.title = `${lab.started} started`;
    median.append(td);
  }

  document.getElementById("stuck-after").textContent = String(view.stuck_after_minutes);
  document.getElementById("stuck").hidden = stuck.length === 0;
  document.getElementById("stuck-list").replaceChildren(...stuck.map(([who, lab, state]) => {
    const li = el("li", "", `${who}: lab ${pad(lab.number)} ${lab.slug}, `);
    li.append(el("code", "", state.failing_tests[0] || "?"));
    const minutes = state.stuck_minutes < 1 ? "under a minute" : `${state.stuck_minutes} min`;
    li.append(document.createTextNode(` for ${minutes}`));
    return li;
  }));

  // Per lab, the failing test most learners share: the most shared first.
  const next = labs.filter((lab) => lab.most_stuck_on)
    .sort((a, b) => b.most_stuck_count - a.most_stuck_count || a.number - b.number);
  document.getElementById("next").hidden = next.length === 0;
  document.getElementById("labs-body").replaceChildren(...next.map((lab) => {
    const tr = el("tr");
    tr.append(el("td", "", `${pad(lab.number)} ${lab.slug}`));
    const test = el("td");
    test.append(el("code", "", lab.most_stuck_on));
    tr.append(test);
    tr.append(el("td", "", `${lab.most_stuck_count} of ${lab.started - lab.passed} working on it`));
    return tr;
  }));
}

function toggleProjector() {
  projector = !projector;
  history.replaceState(null, "", projector ? "#projector" : location.pathname + location.search);
  if (last) render(last);
}

function connect() {
  const events = new EventSource(`api/events?key=${encodeURIComponent(key)}`);
  const status = document.getElementById("connection");
  events.addEventListener("room", (event) => {
    status.className = "online";
    render(JSON.parse(event.data));
  });
  events.onerror = () => {
    status.className = "offline";
    document.getElementById("summary").textContent = "reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("projector").addEventListener("click", toggleProjector);
  document.addEventListener("keydown", (event) => {
    if (event.key === "p" && !event.ctrlKey && !event.metaKey) toggleProjector();
  });
  document.body.classList.toggle("projector", projector);
  connect();
});
