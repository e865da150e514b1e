// The health page's charts: per channel, its success rate (left axis, %) and its calls
// (right axis) over the last half hour, from /console/health/series.json, redrawn every
// 10 seconds. uPlot is vendored (static/vendor/uplot); the page works without it.
(function () {
  "use strict";
  var box = document.getElementById("charts");
  if (!box || typeof uPlot === "undefined") return;
  var plots = {};
  function options(name, width) {
    return {
      title: name,
      width: width,
      height: 220,
      scales: { x: { time: true }, pct: { range: [0, 100] }, n: {} },
      series: [
        {},
        { label: box.dataset.successLabel, scale: "pct", stroke: "#12805c", width: 2, spanGaps: false,
          points: { show: true, size: 5 } },
        { label: box.dataset.callsLabel, scale: "n", stroke: "#2e90fa", fill: "rgba(46,144,250,0.12)", width: 1 }
      ],
      axes: [{}, { scale: "pct", values: function (u, v) { return v.map(function (x) { return x + "%"; }); } },
             { scale: "n", side: 1, grid: { show: false } }]
    };
  }
  function draw(data) {
    var width = Math.max(320, Math.min(560, box.clientWidth / 2 - 24));
    Object.keys(data.channels).forEach(function (name) {
      var ch = data.channels[name];
      var rows = [data.x, ch.success, ch.calls];
      if (plots[name]) { plots[name].setData(rows); return; }
      var div = document.createElement("div");
      div.className = "chart";
      div.dataset.channel = name;
      box.appendChild(div);
      plots[name] = new uPlot(options(name, width), rows, div);
    });
  }
  function load() {
    fetch(box.dataset.series, { credentials: "same-origin" })
      .then(function (r) { if (r.ok) return r.json(); throw new Error(r.status); })
      .then(draw)
      .catch(function () { /* the table above still shows the figures */ });
  }
  load();
  setInterval(load, 10000);
})();
