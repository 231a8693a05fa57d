// Live updates of a run's page: stage statuses, messages and log lines arrive as
// server-sent events from /runs/ID/events.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || live.dataset.final === "true") { return; }
  var id = live.dataset.run;
  var source = new EventSource("/runs/" + id + "/events");
  function section(seq) { return document.getElementById("stage-" + seq); }
  function setStatus(el, status) {
    el.className = "status " + status;
    el.textContent = status;
  }
  source.addEventListener("stage", function (e) {
    var s = JSON.parse(e.data);
    var sec = section(s.seq);
    if (!sec) { return; }
    setStatus(sec.querySelector('[data-role="status"]'), s.status);
    sec.querySelector('[data-role="message"]').textContent = s.message || "";
    sec.querySelector('[data-role="took"]').textContent = s.took || "";
    var gate = sec.querySelector('[data-role="gate"]');
    if (gate) { gate.hidden = s.status !== "waiting"; }
    var node = document.getElementById("node-" + s.seq);
    if (node) {
      node.className = "node " + s.status;
      setStatus(node.querySelector(".status"), s.status);
    }
  });
  // Each stream (a reconnect too) starts every stage's log from its first byte:
  // its first piece replaces what the page shows, later ones are appended.
  var started = {};
  source.addEventListener("open", function () { started = {}; });
  source.addEventListener("log", function (e) {
    var l = JSON.parse(e.data);
    var sec = section(l.seq);
    if (!sec) { return; }
    var pre = sec.querySelector('[data-role="log"]');
    if (started[l.seq]) { pre.textContent += l.text; } else { pre.textContent = l.text; }
    started[l.seq] = true;
  });
  source.addEventListener("run", function (e) {
    var r = JSON.parse(e.data);
    setStatus(document.getElementById("run-status"), r.status);
    if (r.final) {
      source.close();
      // The run ended: show what the page shows for ended runs (retry, no cancel).
      window.location.reload();
    }
  });
})();
