// bant-sync ops console: live updates by polling the console's JSON reads. No build step, no framework.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "";
  var POLL_MS = 1000;
  var WATCH_MS = 3000;

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    var s = Math.round(value);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    s = s % 60;
    if (m < 60) return m + " min " + (s < 10 ? "0" : "") + s + " s";
    var h = Math.floor(m / 60);
    m = m % 60;
    return h + " h " + (m < 10 ? "0" : "") + m + " min";
  }

  function getJSON(path) {
    return fetch(base + path, {
      headers: { "Accept": "application/json", "X-Requested-With": "XMLHttpRequest" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        window.location.assign(base + "/login");
        throw new Error("the session ended");
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function progressText(run) {
    var p = run.progress;
    var parts = [p.read + " deals read" + (p.total ? " of ~" + p.total : "") + ", " + p.written + " written" +
      (run.dry_run ? " (planned)" : "")];
    parts.push(p.per_minute ? p.per_minute + " deals/min" : "rate not known yet");
    if (p.eta_seconds !== null) parts.push("about " + seconds(p.eta_seconds) + " left");
    else parts.push(p.total === null ? "no total known (time left unknown)" : "finishing");
    parts.push("running " + seconds(p.elapsed_seconds));
    return parts.join(" · ");
  }

  function show(element, run) {
    var text = element.querySelector("[data-field=text]");
    if (text && run.progress) text.textContent = progressText(run);
    var bar = element.querySelector("[data-field=bar]");
    if (bar && run.progress && run.progress.fraction !== null) {
      bar.setAttribute("max", "100");
      bar.setAttribute("value", String(Math.round(run.progress.fraction * 1000) / 10));
    }
    var duration = document.querySelector("[data-field=duration]");
    if (duration && run.duration_seconds !== undefined) duration.textContent = seconds(run.duration_seconds);
  }

  function follow(element) {
    var runId = element.getAttribute("data-live-run");
    var waitingToStart = element.getAttribute("data-reload-when") === "started";
    function tick() {
      getJSON("/api/runs/" + encodeURIComponent(runId)).then(function (run) {
        if (run.finished || (waitingToStart && run.status !== "starting")) {
          window.location.reload();
          return;
        }
        show(element, run);
        window.setTimeout(tick, POLL_MS);
      }).catch(function () { window.setTimeout(tick, POLL_MS * 5); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  function watchRunning(shown) {
    // Reload when a run starts or ends that the page does not show (connections and runs pages).
    function tick() {
      getJSON("/api/running").then(function (body) {
        var now = [];
        Object.keys(body.connections).forEach(function (name) {
          body.connections[name].running.forEach(function (run) { now.push(run.run_id); });
        });
        now.sort();
        if (now.join(",") !== shown.join(",")) {
          window.location.reload();
          return;
        }
        window.setTimeout(tick, WATCH_MS);
      }).catch(function () { window.setTimeout(tick, WATCH_MS * 3); });
    }
    window.setTimeout(tick, WATCH_MS);
  }

  var followed = document.querySelectorAll("[data-live-run]");
  var shown = [];
  Array.prototype.forEach.call(followed, function (element) {
    shown.push(element.getAttribute("data-live-run"));
    follow(element);
  });
  if (document.querySelector("[data-watch-running]")) {
    shown.sort();
    watchRunning(shown);
  }
})();
