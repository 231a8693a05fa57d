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

// An environment's traffic: the proxy's cumulative counts, sampled every 2 s; the
// charts show each interval's request rate, 5xx share and the newest target group's
// share of the requests (a canary's split over time).
(function () {
  "use strict";
  var section = document.querySelector("[data-traffic]");
  if (!section) { return; }
  var url = section.dataset.traffic;
  var summary = section.querySelector('[data-role="summary"]');
  var last = null;
  var series = { rate: [], errors: [], split: [], p99: [] };
  // The q-quantile (ms) of the requests between two cumulative histograms
  // ([le seconds or null for +Inf, count]): the upper bound of its bucket.
  function quantile(before, after, q) {
    var prev = {};
    before.forEach(function (b) { prev[String(b[0])] = b[1]; });
    var deltas = after.map(function (b) { return [b[0], b[1] - (prev[String(b[0])] || 0)]; });
    var all = deltas.length ? deltas[deltas.length - 1][1] : 0;
    if (all <= 0) { return null; }
    for (var i = 0; i < deltas.length; i++) {
      if (deltas[i][1] >= q * all) { return deltas[i][0] === null ? null : deltas[i][0] * 1000; }
    }
    return null;
  }
  function total(c) { return c.reduce(function (a, b) { return a + b; }, 0); }
  function draw(name, values, max) {
    var svg = section.querySelector('[data-chart="' + name + '"]');
    var top = Math.max(max || 0, Math.max.apply(null, values.concat([1])));
    var step = 300 / Math.max(values.length - 1, 1);
    var points = values.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (58 - (v / top) * 56).toFixed(1);
    }).join(" ");
    svg.innerHTML = '<polyline points="' + points + '"></polyline>';
  }
  function sample() {
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      return r.json();
    }).then(function (now) {
      if (last) {
        var dt = (now.at - last.at) / 1000;
        var before = {};
        last.groups.forEach(function (g) { before[g.group] = g.by_class; });
        var all = 0, errors = 0, newest = 0;
        now.groups.forEach(function (g, i) {
          var prev = before[g.group] || [0, 0, 0, 0, 0];
          var d = g.by_class.map(function (n, k) { return Math.max(n - prev[k], 0); });
          all += total(d);
          errors += d[4];
          if (i === now.groups.length - 1) { newest = total(d); }
        });
        var p99 = quantile(last.latency || [], now.latency || [], 0.99);
        var rate = dt > 0 ? all / dt : 0;
        var errPct = all > 0 ? 100 * errors / all : 0;
        var splitPct = all > 0 ? 100 * newest / all : 0;
        [["rate", rate], ["errors", errPct], ["split", splitPct], ["p99", p99 || 0]].forEach(function (p) {
          series[p[0]].push(p[1]);
          if (series[p[0]].length > 60) { series[p[0]].shift(); }
        });
        draw("rate", series.rate);
        draw("errors", series.errors, 100);
        draw("split", series.split, 100);
        draw("p99", series.p99);
        summary.textContent = rate.toFixed(1) + " requests/s, " + errPct.toFixed(1) +
          "% 5xx, p99 " + (p99 === null ? "-" : p99.toFixed(1) + " ms") +
          ", over " + now.groups.length + " target group(s)" +
          (now.tasks ? "; " + now.tasks.live + " of " + now.tasks.all + " tasks live" : "");
      }
      last = now;
    }).catch(function (e) {
      summary.textContent = "No traffic figures: " + e.message;
    });
  }
  sample();
  setInterval(sample, 2000);
})();
