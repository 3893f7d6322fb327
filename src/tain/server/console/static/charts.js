// tain console chart helper: every <canvas data-chart="ID"> is drawn from the JSON in
// <script type="application/json" id="ID">: {kind, unit, labels, datasets: [{label, data}]}.
(function () {
  "use strict";
  var COLORS = ["#2f6fb3", "#d9822b", "#3a9d5d", "#c23c3c", "#7d5ba6", "#8c6d46",
                "#d16ba5", "#6b7b8c", "#b5b82c", "#2cb5b8"];
  var UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function humanBytes(value) {
    var v = Math.abs(value), i = 0;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i += 1; }
    return (i === 0 ? v : v.toFixed(1)) + " " + UNITS[i];
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var format = spec.unit === "bytes" ? humanBytes : function (v) { return v; };
    var datasets = spec.datasets.map(function (d, i) {
      var color = COLORS[i % COLORS.length];
      return {label: d.label, data: d.data, backgroundColor: color, borderColor: color};
    });
    canvas.chart = new Chart(canvas, {
      type: spec.kind === "line" ? "line" : "bar",
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: {x: {stacked: spec.kind !== "line"},
                 y: {stacked: spec.kind !== "line", beginAtZero: true,
                     ticks: {precision: spec.unit === "bytes" ? undefined : 0,
                             callback: function (v) { return format(v); }}}},
        plugins: {tooltip: {callbacks: {label: function (c) {
          return c.dataset.label + ": " + format(c.parsed.y);
        }}}}
      }
    });
    canvas.dataset.drawn = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
