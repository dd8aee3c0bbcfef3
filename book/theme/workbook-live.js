// The served book knows your lab.
//
// On a lab's chapter (NN-slug.html), a badge at the top shows where that lab
// stands: not started, changed, failing, passing...; in the sidebar, a mark
// beside each lab started says the same at a glance. Both are kept current by the
// book server (`cargo xtask book`), which pushes every lab's state as
// server-sent events from /workbook/events whenever `cargo xtask check`,
// `watch` or `status` records a result or the lab's files change (see
// xtask/src/book/live.rs for the events). Nothing is loaded from elsewhere.
//
// Opened from disk, or served by anything but the xtask, the page shows
// nothing and logs no error of its own. A hidden tab closes its stream (a
// browser allows only a few connections per server) and opens it again when
// shown, getting the current state at once.
(function () {
  "use strict";

  if (location.protocol !== "http:" && location.protocol !== "https:") return;
  if (typeof EventSource === "undefined" || typeof URL === "undefined") return;
  // A lab's chapter is NN-slug.html, named after the lab's folder.
  function labFolder(path) {
    var file = decodeURIComponent(String(path).split(/[?#]/)[0].split("/").pop() || "");
    var chapter = /^(\d{2,}-[A-Za-z0-9_-]+)\.html$/.exec(file);
    return chapter ? chapter[1] : null;
  }
  var folder = labFolder(location.pathname); // null on other pages
  // mdBook declares `path_to_root` in every page ("" at the top level).
  var root = typeof path_to_root === "string" ? path_to_root : "";
  var url = new URL(root + "workbook/events", location.href).href;

  var source = null;
  var badge = null;
  var heard = false; // Has this server ever answered with events?
  var shown = ""; // The last state drawn, to flash the badge when it changes.

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function chapterLink(lab) {
    var link = element("a", "", "Lab " + String(lab.number).padStart(2, "0") + " " + lab.slug);
    link.href = root + lab.folder + ".html";
    return link;
  }

  var marks = {
    "unchecked": "?",
    "does-not-compile": "✗",
    "failing": "✗",
    "passing": "✓"
  };

  // A pass with edited tests proves little: never a plain ✓ for it.
  function edits(lab) {
    return lab.state === "passing" && Array.isArray(lab.edited_tests) &&
      lab.edited_tests.length > 0;
  }

  // A mark beside each lab's entry in the sidebar.
  function drawSidebar(labs) {
    var links = document.querySelectorAll(".sidebar a[href]");
    for (var i = 0; i < links.length; i++) {
      var link = links[i];
      var lab = null;
      var linked = labFolder(link.getAttribute("href"));
      for (var j = 0; j < labs.length; j++) {
        if (labs[j].folder === linked) lab = labs[j];
      }
      var mark = link.querySelector(".workbook-live-mark");
      var edited = lab && edits(lab);
      if (!lab || !marks[lab.state]) {
        if (mark) mark.remove();
        continue;
      }
      if (!mark) {
        mark = element("span", "");
        link.appendChild(mark);
      }
      mark.className = "workbook-live-mark workbook-live-mark--" + (edited ? "edited" : lab.state);
      mark.textContent = edited ? "!" : marks[lab.state];
      mark.title = lab.summary.replace(/^\S+\s/, "");
    }
  }

  function draw(labs) {
    drawSidebar(labs);
    var lab = null;
    for (var i = 0; i < labs.length; i++) {
      if (labs[i].folder === folder) lab = labs[i];
    }
    if (!lab) {
      // Not a lab's chapter (or the lab is gone): no badge.
      if (badge) badge.remove();
      badge = null;
      return;
    }
    var main = document.querySelector("main");
    if (!main) return;
    if (!badge) {
      badge = element("div", "workbook-live");
      badge.setAttribute("role", "status");
      badge.setAttribute("aria-live", "polite");
      badge.title = "Live from `cargo xtask book`: updated whenever you run " +
        "cargo xtask check, watch or status, or edit the lab.";
      main.insertBefore(badge, main.firstChild);
    }
    badge.className = "workbook-live workbook-live--" + lab.state +
      (edits(lab) ? " workbook-live--edited" : "");
    badge.textContent = "";
    badge.appendChild(element("span", "workbook-live-lab",
      "Lab " + String(lab.number).padStart(2, "0") + " " + lab.slug + ":"));
    badge.appendChild(document.createTextNode(" "));
    badge.appendChild(element("span", "workbook-live-state", lab.summary));
    badge.appendChild(document.createTextNode(" "));
    var next = element("span", "workbook-live-next");
    if (lab.command) {
      next.appendChild(document.createTextNode("— run "));
      next.appendChild(element("code", "", lab.command));
    } else {
      var open = labs.filter(function (other) {
        return other.state !== "passing";
      });
      var later = open.filter(function (other) {
        return other.number > lab.number;
      });
      if (later.length > 0) {
        next.appendChild(document.createTextNode("— next: "));
        next.appendChild(chapterLink(later[0]));
      } else if (open.length > 0) {
        next.appendChild(document.createTextNode("— still open: "));
        next.appendChild(chapterLink(open[0]));
      } else {
        next.appendChild(document.createTextNode("— every lab passes. Well done!"));
      }
    }
    badge.appendChild(next);
    badge.appendChild(document.createTextNode(" "));
    badge.appendChild(element("span", "workbook-live-stale", "(the book server is not running)"));
    var now = lab.state + " " + lab.summary;
    if (shown && now !== shown) {
      // Restart the animation: remove, force a style flush, add.
      badge.classList.remove("workbook-live--changed");
      void badge.offsetWidth;
      badge.classList.add("workbook-live--changed");
    }
    shown = now;
  }

  function connect() {
    if (source) return;
    source = new EventSource(url);
    source.addEventListener("labs", function (event) {
      heard = true;
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      draw(Array.isArray(data.labs) ? data.labs : []);
    });
    source.addEventListener("error", function () {
      if (!heard) {
        // No live state here (another server, or an old xtask): stay quiet.
        disconnect();
        return;
      }
      if (badge) badge.classList.add("workbook-live--offline");
      if (source && source.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered but not with events);
        // try again now and then, as it does by itself otherwise.
        disconnect();
        setTimeout(function () {
          if (!document.hidden) connect();
        }, 2000);
      }
    });
    source.addEventListener("open", function () {
      if (badge) badge.classList.remove("workbook-live--offline");
    });
  }

  function disconnect() {
    if (source) source.close();
    source = null;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) disconnect();
    else if (heard) connect();
  });
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", function () {
    if (!document.hidden && heard) connect();
  });
  if (!document.hidden) connect();
})();
