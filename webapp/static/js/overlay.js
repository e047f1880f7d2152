// Draws the measured transitions between step cards of the overlay map as curves with their counts.
// The figures come from the table's data-transitions attribute (server-rendered JSON, no inline script).
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";

  function human(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 129600) return (seconds / 3600).toFixed(seconds < 36000 ? 1 : 0) + " h";
    return (seconds / 86400).toFixed(seconds < 864000 ? 1 : 0) + " d";
  }

  function draw() {
    const table = document.getElementById("overlay-map");
    const layer = document.getElementById("transition-layer");
    if (!table || !layer) return;
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    let transitions = [];
    try { transitions = JSON.parse(table.dataset.transitions || "[]"); } catch (e) { return; }
    const box = layer.parentElement.getBoundingClientRect();
    const scrollLeft = layer.parentElement.scrollLeft, scrollTop = layer.parentElement.scrollTop;
    layer.setAttribute("width", table.scrollWidth);
    layer.setAttribute("height", table.scrollHeight);
    const top = transitions.slice(0, 30);
    const most = Math.max(1, ...top.map((t) => t.frequency));
    top.forEach((t) => {
      const a = document.getElementById("ostep-" + t.from_step);
      const b = document.getElementById("ostep-" + t.to_step);
      if (!a || !b || a === b) return;
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      const x1 = ra.right - box.left + scrollLeft, y1 = ra.top + ra.height / 2 - box.top + scrollTop;
      const x2 = rb.left - box.left + scrollLeft, y2 = rb.top + rb.height / 2 - box.top + scrollTop;
      const bend = Math.max(30, Math.abs(x2 - x1) / 3);
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`);
      path.setAttribute("stroke-width", String(1 + 6 * t.frequency / most));
      layer.appendChild(path);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", String((x1 + x2) / 2));
      label.setAttribute("y", String((y1 + y2) / 2 - 3));
      label.textContent = `${t.frequency} · ${human(t.median_s)}`;
      layer.appendChild(label);
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  window.addEventListener("resize", draw);
})();
