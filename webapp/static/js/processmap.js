// Journeylens process map: a directly-follows graph (like Disco or Celonis) drawn as SVG, laid out by dagre.
//
// Markup: <div data-process-map data-src="/url/of/map.json" [data-filename="name"]></div>, with
// vendor/dagre/dagre.min.js loaded before this file. Every such element is initialised on page load and
// after htmx swaps. No build step, no inline script and no inline style (the CSP is script-src 'self',
// style-src 'self'): the SVG is styled with presentation attributes only, so the downloaded SVG and PNG
// look exactly like the page.
//
// JSON contract (GET data-src, credentials same-origin):
//   { "activities": [{"name": str, "events": int, "cases": int}],
//     "edges": [{"source": str, "target": str, "frequency": int,
//                "mean_s": num, "median_s": num, "p90_s": num}],
//     "start_activities": {name: count}, "end_activities": {name: count} }
// Also accepted: the miner's spelling ("activity" for "name", "count" for "frequency", "dfg" for "edges").
(function () {
  "use strict";
  // Loaded twice (e.g. a <script> inside an htmx-swapped fragment)? The first copy already watches the page.
  if (window.JourneylensProcessMap) return;

  const SVG_NS = "http://www.w3.org/2000/svg";
  const XMLNS_NS = "http://www.w3.org/2000/xmlns/";
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const DEFAULT_MAX_ACTIVITIES = 30; // the Activities slider's start (data-activities overrides)
  const DEFAULT_PATH_BUDGET = 40; // the Paths slider starts below 100 % only past max(this, 2 x activities)

  const NODE = { minWidth: 120, maxWidth: 240, padX: 14, padY: 8, nameLine: 17, countLine: 15, radius: 8 };
  const TERMINAL_RADIUS = 27;
  const NAME_FONT = "600 14px " + FONT;
  const COUNT_FONT = "400 12px " + FONT;
  const EDGE_FONT = "600 12px " + FONT;

  const COLOURS = {
    nodeLow: "#e9f0f9",
    nodeHigh: "#1d4f91",
    nodeStroke: "#1d4f91",
    textDark: "#14233a",
    textLight: "#ffffff",
    edgeLow: "#a6b0bc",
    edgeHigh: "#2f3b4c",
    terminalEdge: "#8a96a3",
    start: "#2e7d32",
    startStroke: "#1b5e20",
    end: "#c62828",
    endStroke: "#8e1b1b",
    label: "#1f2a37",
    halo: "#ffffff",
    background: "#ffffff",
    // Performance: median waiting time, short (grey-blue) to long (dark red).
    perf: ["#8ea7c2", "#c9a46a", "#d9752f", "#b8342a", "#7a1010"],
    noTime: "#b9c0c8",
  };

  let instanceCount = 0;
  const instances = new WeakMap();

  // ---------------------------------------------------------------------------------------------------
  // Formatting
  // ---------------------------------------------------------------------------------------------------

  function lang() {
    return (document.documentElement.getAttribute("lang") || "en").trim() || "en";
  }

  let numberFormatter = null;
  function formatCount(n) {
    if (!numberFormatter) {
      try {
        numberFormatter = new Intl.NumberFormat(lang());
      } catch (error) {
        numberFormatter = new Intl.NumberFormat("en");
      }
    }
    return numberFormatter.format(n);
  }

  function trimDecimal(value) {
    return String(Math.round(value * 10) / 10).replace(/\.0$/, "");
  }

  // "12 s", "45 min", "3.2 h", "2 d 4 h".
  function humanizeDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "\u2013";
    const s = Math.max(0, Number(seconds));
    if (s === 0) return "0 s";
    if (s < 1) return "< 1 s";
    if (s < 59.5) return Math.round(s) + " s";
    if (s < 3570) return Math.round(s / 60) + " min";
    const hours = Math.round((s / 3600) * 10) / 10;
    if (hours < 24) return trimDecimal(hours) + " h";
    let days = Math.floor(s / 86400);
    let rest = Math.round((s - days * 86400) / 3600);
    if (rest === 24) {
      days += 1;
      rest = 0;
    }
    if (days >= 100 || rest === 0) return formatCount(days) + " d";
    return days + " d " + rest + " h";
  }

  // ---------------------------------------------------------------------------------------------------
  // Colour and scales
  // ---------------------------------------------------------------------------------------------------

  function hexToRgb(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function rgbToHex(rgb) {
    return "#" + rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
  }

  function mix(a, b, t) {
    const x = hexToRgb(a);
    const y = hexToRgb(b);
    return rgbToHex(x.map((c, i) => c + (y[i] - c) * t));
  }

  function ramp(stops, t) {
    const u = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(u));
    return mix(stops[i], stops[i + 1], u - i);
  }

  // Position of `value` between min and max on a log scale, 0..1 (1 when the range is empty).
  function logPosition(value, min, max) {
    const lo = Math.log1p(Math.max(0, min));
    const hi = Math.log1p(Math.max(0, max));
    if (!(hi > lo)) return 1;
    return Math.min(1, Math.max(0, (Math.log1p(Math.max(0, value)) - lo) / (hi - lo)));
  }

  // Relative luminance, to pick dark or light text on a fill.
  function luminance(hex) {
    const lin = hexToRgb(hex).map((c) => {
      const v = c / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  }

  // ---------------------------------------------------------------------------------------------------
  // Text measurement
  // ---------------------------------------------------------------------------------------------------

  let measureContext = null;
  function textWidth(text, font) {
    if (!measureContext) measureContext = document.createElement("canvas").getContext("2d");
    if (!measureContext) return text.length * 7;
    measureContext.font = font;
    return measureContext.measureText(text).width;
  }

  function ellipsize(text, font, maxWidth) {
    if (textWidth(text, font) <= maxWidth) return text;
    let cut = text.length;
    while (cut > 1 && textWidth(text.slice(0, cut) + "\u2026", font) > maxWidth) cut -= 1;
    return text.slice(0, cut).trimEnd() + "\u2026";
  }

  // At most two lines of at most maxWidth; the second is ellipsized.
  function wrapName(name, font, maxWidth) {
    if (textWidth(name, font) <= maxWidth) return [name];
    const words = name.split(/\s+/).filter(Boolean);
    let first = "";
    let i = 0;
    while (i < words.length) {
      const candidate = first ? first + " " + words[i] : words[i];
      if (first && textWidth(candidate, font) > maxWidth) break;
      first = candidate;
      i += 1;
    }
    if (textWidth(first, font) > maxWidth || i >= words.length) {
      return [ellipsize(name, font, maxWidth)];
    }
    return [first, ellipsize(words.slice(i).join(" "), font, maxWidth)];
  }

  // ---------------------------------------------------------------------------------------------------
  // The data
  // ---------------------------------------------------------------------------------------------------

  function toNumber(value) {
    const n = Number(value);
    return isFinite(n) ? n : 0;
  }

  function toSeconds(value) {
    if (value === null || value === undefined || value === "") return null;
    const n = Number(value);
    return isFinite(n) ? n : null;
  }

  // The JSON as an ordered model: activities by events (desc), edges by frequency (desc).
  function normalise(raw) {
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
      throw new Error("the response is not a process map");
    }
    const activities = [];
    const byName = new Map();
    (Array.isArray(raw.activities) ? raw.activities : []).forEach((item) => {
      if (!item || typeof item !== "object") return;
      const name = item.name !== undefined && item.name !== null ? item.name : item.activity;
      if (name === undefined || name === null || byName.has(String(name))) return;
      const activity = { name: String(name), events: toNumber(item.events), cases: toNumber(item.cases) };
      byName.set(activity.name, activity);
      activities.push(activity);
    });
    activities.sort((a, b) => b.events - a.events || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    activities.forEach((activity, index) => {
      activity.id = "a" + index;
      activity.rank = index;
    });

    const edges = [];
    const seen = new Set();
    const rawEdges = Array.isArray(raw.edges) ? raw.edges : Array.isArray(raw.dfg) ? raw.dfg : [];
    rawEdges.forEach((item) => {
      if (!item || typeof item !== "object") return;
      const source = byName.get(String(item.source));
      const target = byName.get(String(item.target));
      const frequency = toNumber(item.frequency !== undefined ? item.frequency : item.count);
      const key = String(item.source) + "\u0001" + String(item.target);
      if (!source || !target || frequency <= 0 || seen.has(key)) return;
      seen.add(key);
      edges.push({
        source: source,
        target: target,
        frequency: frequency,
        mean_s: toSeconds(item.mean_s),
        median_s: toSeconds(item.median_s),
        p90_s: toSeconds(item.p90_s),
      });
    });
    edges.sort(
      (a, b) => b.frequency - a.frequency || a.source.rank - b.source.rank || a.target.rank - b.target.rank,
    );

    const terminal = (object) => {
      const result = new Map();
      if (object && typeof object === "object") {
        Object.keys(object).forEach((name) => {
          const count = toNumber(object[name]);
          if (byName.has(name) && count > 0) result.set(byName.get(name), count);
        });
      }
      return result;
    };
    return {
      activities: activities,
      edges: edges,
      starts: terminal(raw.start_activities),
      ends: terminal(raw.end_activities),
    };
  }

  // What to draw: the `activityLimit` most frequent activities and the top `pathPercent` % of the paths
  // between them, plus, for any activity left without a way in or out, its strongest path in or out.
  function selectView(model, activityLimit, pathPercent) {
    const activities = model.activities.slice(0, activityLimit);
    const visible = new Set(activities);
    const candidates = model.edges.filter((e) => visible.has(e.source) && visible.has(e.target));
    const keep = Math.ceil((candidates.length * pathPercent) / 100);
    const chosen = new Set(candidates.slice(0, keep));
    if (keep < candidates.length) {
      activities.forEach((activity) => {
        const hasIn =
          model.starts.has(activity) ||
          candidates.some((e) => chosen.has(e) && e.target === activity && e.source !== activity);
        const hasOut =
          model.ends.has(activity) ||
          candidates.some((e) => chosen.has(e) && e.source === activity && e.target !== activity);
        if (!hasIn) {
          const best = candidates.find((e) => e.target === activity && e.source !== activity);
          if (best) chosen.add(best);
        }
        if (!hasOut) {
          const best = candidates.find((e) => e.source === activity && e.target !== activity);
          if (best) chosen.add(best);
        }
      });
    }
    const edges = candidates.filter((e) => chosen.has(e));
    const starts = activities
      .filter((a) => model.starts.has(a))
      .map((a) => ({ activity: a, frequency: model.starts.get(a) }));
    const ends = activities
      .filter((a) => model.ends.has(a))
      .map((a) => ({ activity: a, frequency: model.ends.get(a) }));
    return { activities: activities, edges: edges, starts: starts, ends: ends };
  }

  // All paths when they are few enough to read; otherwise the most frequent ones, about two per activity
  // (the summary line says how many are hidden, and the Paths slider brings them back).
  function defaultPathPercent(model, activityLimit) {
    const visible = new Set(model.activities.slice(0, activityLimit));
    const candidates = model.edges.filter((e) => visible.has(e.source) && visible.has(e.target)).length;
    const budget = Math.max(DEFAULT_PATH_BUDGET, 2 * activityLimit);
    if (candidates <= budget) return 100;
    return Math.max(1, Math.floor((100 * budget) / candidates));
  }

  // ---------------------------------------------------------------------------------------------------
  // Layout (dagre)
  // ---------------------------------------------------------------------------------------------------

  function layoutView(view) {
    const dagre = window.dagre;
    const g = new dagre.graphlib.Graph({ multigraph: false, directed: true });
    g.setGraph({
      rankdir: "TB",
      nodesep: 30,
      edgesep: 14,
      ranksep: 32,
      marginx: 24,
      marginy: 24,
      // No "acyclicer": dagre's default depth-first search, which follows each activity's paths in the
      // order added (most frequent first) from the start node, so rework loops become the back edges.
      ranker: "network-simplex",
    });
    g.setDefaultEdgeLabel(() => ({}));

    const nodes = [];
    const arcs = [];
    const maxTextWidth = NODE.maxWidth - 2 * NODE.padX;

    if (view.starts.length) {
      const start = {
        id: "start",
        terminal: "start",
        width: 2 * TERMINAL_RADIUS,
        height: 2 * TERMINAL_RADIUS,
      };
      nodes.push(start);
      g.setNode(start.id, start);
    }
    view.activities.forEach((activity) => {
      const lines = wrapName(activity.name, NAME_FONT, maxTextWidth);
      const count = formatCount(activity.events);
      const contentWidth = Math.max(
        textWidth(count, COUNT_FONT),
        ...lines.map((line) => textWidth(line, NAME_FONT)),
      );
      const node = {
        id: activity.id,
        activity: activity,
        lines: lines,
        countText: count,
        width: Math.round(Math.min(NODE.maxWidth, Math.max(NODE.minWidth, contentWidth + 2 * NODE.padX))),
        height: 2 * NODE.padY + lines.length * NODE.nameLine + NODE.countLine,
      };
      nodes.push(node);
      g.setNode(node.id, node);
    });
    if (view.ends.length) {
      const end = { id: "end", terminal: "end", width: 2 * TERMINAL_RADIUS, height: 2 * TERMINAL_RADIUS };
      nodes.push(end);
      g.setNode(end.id, end);
    }

    const addArc = (arc, sourceId, targetId) => {
      const texts = [formatCount(arc.frequency)];
      if (arc.kind === "path") texts.push(humanizeDuration(arc.edge.median_s));
      const width = Math.max(...texts.map((t) => textWidth(t, EDGE_FONT))) + 8;
      arc.labelWidth = Math.ceil(width);
      arc.v = sourceId;
      arc.w = targetId;
      arcs.push(arc);
      g.setEdge(sourceId, targetId, {
        arc: arc,
        width: arc.labelWidth,
        height: 16,
        labelpos: "r",
        labeloffset: 5,
        minlen: 1,
        weight: Math.max(1, Math.round(Math.log2(1 + arc.frequency))),
      });
    };
    view.starts.forEach((s) =>
      addArc({ kind: "start", frequency: s.frequency, activity: s.activity }, "start", s.activity.id),
    );
    view.edges.forEach((e) =>
      addArc({ kind: "path", frequency: e.frequency, edge: e }, e.source.id, e.target.id),
    );
    view.ends.forEach((s) =>
      addArc({ kind: "end", frequency: s.frequency, activity: s.activity }, s.activity.id, "end"),
    );

    dagre.layout(g);
    const graph = g.graph();
    arcs.forEach((arc) => {
      const label = g.edge(arc.v, arc.w);
      arc.points = (label.points || []).filter((p) => isFinite(p.x) && isFinite(p.y));
      arc.labelX = label.x;
      arc.labelY = label.y;
      if (arc.v === arc.w) arc.loopNode = g.node(arc.v);
    });
    return {
      nodes: nodes,
      arcs: arcs,
      width: Math.ceil(graph.width || 0),
      height: Math.ceil(graph.height || 0),
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // SVG helpers
  // ---------------------------------------------------------------------------------------------------

  function svg(tag, attributes, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    if (attributes) {
      Object.keys(attributes).forEach((name) => {
        const value = attributes[name];
        if (value !== undefined && value !== null) el.setAttribute(name, String(value));
      });
    }
    if (parent) parent.appendChild(el);
    return el;
  }

  function html(tag, attributes, text) {
    const el = document.createElement(tag);
    if (attributes) {
      Object.keys(attributes).forEach((name) => {
        const value = attributes[name];
        if (value !== undefined && value !== null && value !== false)
          el.setAttribute(name, value === true ? "" : String(value));
      });
    }
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function r2(value) {
    return Math.round(value * 100) / 100;
  }

  // A B-spline through dagre's points (as d3.curveBasis): starts and ends exactly on the first and last.
  function splinePath(points) {
    const p = points;
    const n = p.length;
    if (n < 2) return "";
    let d = "M" + r2(p[0].x) + "," + r2(p[0].y);
    if (n === 2) return d + "L" + r2(p[1].x) + "," + r2(p[1].y);
    const curve = (a, b, c) =>
      "C" +
      r2((2 * a.x + b.x) / 3) +
      "," +
      r2((2 * a.y + b.y) / 3) +
      " " +
      r2((a.x + 2 * b.x) / 3) +
      "," +
      r2((a.y + 2 * b.y) / 3) +
      " " +
      r2((a.x + 4 * b.x + c.x) / 6) +
      "," +
      r2((a.y + 4 * b.y + c.y) / 6);
    d += "L" + r2((5 * p[0].x + p[1].x) / 6) + "," + r2((5 * p[0].y + p[1].y) / 6);
    for (let i = 2; i < n; i++) d += curve(p[i - 2], p[i - 1], p[i]);
    d += curve(p[n - 2], p[n - 1], p[n - 1]);
    return d + "L" + r2(p[n - 1].x) + "," + r2(p[n - 1].y);
  }

  // The line's points shortened so that it ends under the arrowhead, and the arrowhead's outline.
  function withArrow(points, strokeWidth) {
    const n = points.length;
    const tip = points[n - 1];
    let from = points[n - 2];
    for (let i = n - 2; i >= 0 && Math.hypot(tip.x - points[i].x, tip.y - points[i].y) < 1; i--)
      from = points[i];
    const dx = tip.x - from.x;
    const dy = tip.y - from.y;
    const length = Math.hypot(dx, dy) || 1;
    const ux = dx / length;
    const uy = dy / length;
    const arrowLength = 7 + strokeWidth * 1.4;
    const halfWidth = 3.5 + strokeWidth * 0.9;
    const back = Math.min(arrowLength * 0.8, length * 0.9);
    const line = points.slice(0, n - 1).concat([{ x: tip.x - ux * back, y: tip.y - uy * back }]);
    const bx = tip.x - ux * arrowLength;
    const by = tip.y - uy * arrowLength;
    const head =
      "M" +
      r2(tip.x) +
      "," +
      r2(tip.y) +
      "L" +
      r2(bx - uy * halfWidth) +
      "," +
      r2(by + ux * halfWidth) +
      "L" +
      r2(bx + uy * halfWidth) +
      "," +
      r2(by - ux * halfWidth) +
      "Z";
    return { line: line, head: head };
  }

  // Points of a loop leaving an activity's right side above its middle and coming back below it.
  function selfLoop(node, strokeWidth) {
    const right = node.x + node.width / 2;
    const cy = node.y;
    const gap = Math.min(node.height / 2 - 3, 9 + strokeWidth / 2);
    const reach = 24 + strokeWidth * 2;
    const points = [
      { x: right, y: cy - gap },
      { x: right + reach * 0.5, y: cy - gap - 8 },
      { x: right + reach, y: cy - gap },
      { x: right + reach, y: cy + gap },
      { x: right + reach * 0.5, y: cy + gap + 8 },
      { x: right, y: cy + gap },
    ];
    return { points: points, labelX: right + reach + strokeWidth / 2 + 5, labelY: cy };
  }

  // ---------------------------------------------------------------------------------------------------
  // Legend (also drawn into the downloaded files)
  // ---------------------------------------------------------------------------------------------------

  function buildLegend(mode, range) {
    const group = svg("g", { "font-family": FONT, class: "pm-legend-content" });
    if (mode === "performance") {
      svg(
        "text",
        { x: 0, y: 11, "font-size": 11, "font-weight": 600, fill: COLOURS.label },
        group,
      ).textContent = "Median waiting time";
      const steps = 9;
      for (let i = 0; i < steps; i++) {
        svg(
          "rect",
          { x: i * 18, y: 17, width: 18, height: 10, fill: ramp(COLOURS.perf, i / (steps - 1)) },
          group,
        );
      }
      const low = range ? humanizeDuration(range.min) : "";
      const high = range ? humanizeDuration(range.max) : "";
      svg("text", { x: 0, y: 41, "font-size": 11, fill: COLOURS.label }, group).textContent = low;
      svg(
        "text",
        { x: steps * 18, y: 41, "font-size": 11, fill: COLOURS.label, "text-anchor": "end" },
        group,
      ).textContent = high;
      const width = Math.max(steps * 18, Math.ceil(textWidth("Median waiting time", "600 11px " + FONT)) + 4);
      return { node: group, width: width, height: 46 };
    }
    const title = "Path labels: number of transitions";
    const note = "Thicker line = more frequent";
    svg(
      "text",
      { x: 0, y: 11, "font-size": 11, "font-weight": 600, fill: COLOURS.label },
      group,
    ).textContent = title;
    svg("text", { x: 0, y: 26, "font-size": 11, fill: COLOURS.label }, group).textContent = note;
    const width = Math.ceil(Math.max(textWidth(title, "600 11px " + FONT), textWidth(note, EDGE_FONT))) + 4;
    return { node: group, width: width, height: 30 };
  }

  // ---------------------------------------------------------------------------------------------------
  // The widget
  // ---------------------------------------------------------------------------------------------------

  class ProcessMap {
    constructor(root) {
      instanceCount += 1;
      this.root = root;
      this.uid = "pm" + instanceCount;
      this.mode = "frequency";
      this.model = null;
      this.layout = null;
      this.view = { k: 1, x: 0, y: 0 };
      this.moved = false;
      this.scheduled = 0;
      this.buildChrome();
      this.load();
    }

    // -- chrome ------------------------------------------------------------------------------------

    buildChrome() {
      const root = this.root;
      root.classList.add("pm");
      root.textContent = "";
      const id = (suffix) => this.uid + "-" + suffix;

      const toolbar = html("div", { class: "pm-toolbar" });
      const modes = html("div", { class: "pm-group pm-modes", role: "group", "aria-label": "Path labels" });
      this.modeButtons = ["frequency", "performance"].map((mode) => {
        const button = html(
          "button",
          {
            type: "button",
            class: "pm-button pm-mode",
            "data-mode": mode,
            "aria-pressed": String(mode === this.mode),
          },
          mode === "frequency" ? "Frequency" : "Performance",
        );
        button.addEventListener("click", () => this.setMode(mode));
        modes.appendChild(button);
        return button;
      });
      toolbar.appendChild(modes);

      const slider = (key, text) => {
        const wrap = html("div", { class: "pm-slider pm-slider-" + key });
        const label = html("label", { for: id(key) }, text);
        const input = html("input", {
          type: "range",
          id: id(key),
          name: key,
          min: 1,
          max: 1,
          step: 1,
          value: 1,
        });
        const output = html("output", { for: id(key), class: "pm-value", "aria-hidden": "true" });
        wrap.append(label, input, output);
        toolbar.appendChild(wrap);
        input.addEventListener("input", () => this.scheduleRender());
        return { input: input, output: output };
      };
      this.activitiesControl = slider("activities", "Activities");
      this.pathsControl = slider("paths", "Paths");
      this.pathsControl.input.min = "0";
      this.pathsControl.input.max = "100";
      this.pathsControl.input.value = "100";

      const zoom = html("div", { class: "pm-group pm-zoom", role: "group", "aria-label": "Zoom" });
      const zoomOut = html(
        "button",
        {
          type: "button",
          class: "pm-button",
          "data-action": "zoom-out",
          "aria-label": "Zoom out",
          title: "Zoom out (\u2212)",
        },
        "\u2212",
      );
      const zoomIn = html(
        "button",
        {
          type: "button",
          class: "pm-button",
          "data-action": "zoom-in",
          "aria-label": "Zoom in",
          title: "Zoom in (+)",
        },
        "+",
      );
      const fit = html(
        "button",
        { type: "button", class: "pm-button", "data-action": "fit", title: "Fit the map to the view (0)" },
        "Fit",
      );
      zoomOut.addEventListener("click", () => this.zoomBy(1 / 1.25));
      zoomIn.addEventListener("click", () => this.zoomBy(1.25));
      fit.addEventListener("click", () => this.fit());
      zoom.append(zoomIn, zoomOut, fit);

      const downloads = html("div", {
        class: "pm-group pm-downloads",
        role: "group",
        "aria-label": "Download",
      });
      const svgButton = html(
        "button",
        { type: "button", class: "pm-button", "data-action": "download-svg" },
        "Download SVG",
      );
      const pngButton = html(
        "button",
        { type: "button", class: "pm-button", "data-action": "download-png" },
        "Download PNG",
      );
      svgButton.addEventListener("click", () => this.downloadSvg());
      pngButton.addEventListener("click", () => this.downloadPng());
      downloads.append(svgButton, pngButton);
      toolbar.appendChild(downloads);

      this.summary = html("p", { class: "pm-summary", "aria-live": "polite" });
      this.message = html("p", { class: "pm-message", role: "status" }, "Loading the process map\u2026");
      const hint = html(
        "p",
        { class: "pm-hint", id: id("hint") },
        "Drag or use the arrow keys to pan; wheel, + and \u2212 to zoom; 0 to fit.",
      );

      this.canvas = html("div", {
        class: "pm-canvas",
        tabindex: "0",
        role: "img",
        "aria-label": "Process map",
        "aria-describedby": id("hint"),
      });
      this.svg = svg("svg", {
        class: "pm-svg",
        width: "100%",
        height: "100%",
        "font-family": FONT,
        focusable: "false",
        "aria-hidden": "true",
      });
      this.viewport = svg("g", { class: "pm-viewport" }, this.svg);
      this.legend = html("div", { class: "pm-legend", "aria-hidden": "true" });
      this.legendSvg = svg("svg", { class: "pm-legend-svg" });
      this.legend.appendChild(this.legendSvg);
      this.canvas.appendChild(this.svg);
      // The stage holds the map (role img: its content is presentational) and, beside it, the controls
      // drawn over it, which must stay real buttons for assistive technology.
      this.stage = html("div", { class: "pm-stage" });
      this.stage.append(this.canvas, this.legend, zoom);

      this.toolbar = toolbar;
      this.hint = hint;
      root.append(toolbar, this.summary, this.message, this.stage, hint);
      this.setControlsEnabled(false);
      this.showMessage(this.message.textContent, false);
      this.bindNavigation();
    }

    setControlsEnabled(enabled) {
      this.root.querySelectorAll(".pm-toolbar button, .pm-toolbar input, .pm-zoom button").forEach((el) => {
        el.disabled = !enabled;
      });
    }

    showMessage(text, isError) {
      this.message.textContent = text;
      this.message.hidden = false;
      this.message.classList.toggle("pm-error", Boolean(isError));
      this.message.setAttribute("role", isError ? "alert" : "status");
      // Without a map there is nothing to filter, zoom or download: the message stands alone.
      this.toolbar.hidden = true;
      this.stage.hidden = true;
      this.hint.hidden = true;
      this.summary.textContent = "";
    }

    // -- data ---------------------------------------------------------------------------------------

    load() {
      const src = this.root.getAttribute("data-src");
      if (!src) {
        this.showMessage("Could not load the process map: the element has no data-src.", true);
        return;
      }
      fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => {
          if (!response.ok) {
            throw new Error(
              "the server answered " +
                response.status +
                (response.statusText ? " " + response.statusText : ""),
            );
          }
          return response.json();
        })
        .then((raw) => {
          if (!window.dagre || !window.dagre.layout)
            throw new Error("the layout library (dagre) is not loaded");
          this.setData(raw);
        })
        .catch((error) => {
          this.showMessage("Could not load the process map: " + ((error && error.message) || error), true);
        });
    }

    setData(raw) {
      this.model = normalise(raw);
      const n = this.model.activities.length;
      if (!n) {
        this.showMessage("No events to draw.", false);
        return;
      }
      const a = this.activitiesControl.input;
      a.min = "1";
      a.max = String(n);
      const wantedActivities = Math.round(Number(this.root.getAttribute("data-activities")));
      const activityLimit =
        wantedActivities >= 1 ? Math.min(n, wantedActivities) : Math.min(n, DEFAULT_MAX_ACTIVITIES);
      a.value = String(activityLimit);
      const wantedPaths = this.root.getAttribute("data-paths");
      this.pathsControl.input.value = String(
        wantedPaths !== null && wantedPaths !== "" && isFinite(Number(wantedPaths))
          ? Math.max(0, Math.min(100, Math.round(Number(wantedPaths))))
          : defaultPathPercent(this.model, activityLimit),
      );
      this.setControlsEnabled(true);
      this.message.hidden = true;
      this.toolbar.hidden = false;
      this.stage.hidden = false;
      this.hint.hidden = false;
      this.render();
      this.observeSize();
    }

    // -- drawing ------------------------------------------------------------------------------------

    scheduleRender() {
      if (this.scheduled) return;
      this.scheduled = window.requestAnimationFrame(() => {
        this.scheduled = 0;
        this.render();
      });
    }

    render() {
      if (!this.model) return;
      const activityLimit = Number(this.activitiesControl.input.value);
      const pathPercent = Number(this.pathsControl.input.value);
      const selection = selectView(this.model, activityLimit, pathPercent);
      this.activitiesControl.output.textContent = String(activityLimit);
      this.activitiesControl.input.setAttribute(
        "aria-valuetext",
        activityLimit + " of " + this.model.activities.length + " activities",
      );
      this.pathsControl.output.textContent = pathPercent + "%";
      this.pathsControl.input.setAttribute("aria-valuetext", pathPercent + "% of the paths");

      try {
        this.layout = layoutView(selection);
      } catch (error) {
        this.showMessage("Could not draw the process map: " + ((error && error.message) || error), true);
        return;
      }
      this.selection = selection;
      this.draw();
      this.applyMode();

      const shownActivities = selection.activities.length;
      const shownPaths = selection.edges.length;
      this.summary.textContent =
        "Showing " +
        shownActivities +
        " of " +
        this.model.activities.length +
        " activities and " +
        shownPaths +
        " of " +
        this.model.edges.length +
        " paths";
      this.canvas.setAttribute(
        "aria-label",
        "Process map: " +
          shownActivities +
          " " +
          (shownActivities === 1 ? "activity" : "activities") +
          ", " +
          shownPaths +
          " " +
          (shownPaths === 1 ? "path" : "paths"),
      );
      this.moved = false;
      this.fit();
    }

    draw() {
      const layout = this.layout;
      const viewport = this.viewport;
      viewport.textContent = "";
      const edgeLayer = svg("g", { class: "pm-edges" }, viewport);
      const nodeLayer = svg("g", { class: "pm-nodes" }, viewport);

      const frequencies = layout.arcs.map((arc) => arc.frequency);
      const maxFrequency = Math.max(1, ...frequencies);
      const minFrequency = Math.min(maxFrequency, ...frequencies);
      layout.arcs.forEach((arc) => {
        const t = logPosition(arc.frequency, minFrequency, maxFrequency);
        arc.strength = t;
        // Start and end arcs are context, not paths: thinner, dashed.
        arc.strokeWidth = r2(arc.kind === "path" ? 1 + 7 * t : 1 + 2.5 * t);
        this.drawArc(edgeLayer, arc);
      });

      const events = layout.nodes.filter((n) => n.activity).map((n) => n.activity.events);
      const maxEvents = Math.max(1, ...events);
      const minEvents = Math.min(maxEvents, ...events);
      layout.nodes.forEach((node) => this.drawNode(nodeLayer, node, minEvents, maxEvents));
    }

    drawArc(layer, arc) {
      const attrs = { class: "pm-edge", "data-kind": arc.kind, "data-frequency": arc.frequency };
      if (arc.kind === "path") {
        attrs["data-source"] = arc.edge.source.name;
        attrs["data-target"] = arc.edge.target.name;
      } else {
        attrs["data-activity"] = arc.activity.name;
      }
      const group = svg("g", attrs, layer);
      const title = svg("title", null, group);
      if (arc.kind === "path") {
        const e = arc.edge;
        title.textContent =
          e.source.name +
          " \u2192 " +
          e.target.name +
          ": " +
          formatCount(e.frequency) +
          " times; waiting median " +
          humanizeDuration(e.median_s) +
          ", mean " +
          humanizeDuration(e.mean_s) +
          ", 90th percentile " +
          humanizeDuration(e.p90_s);
      } else if (arc.kind === "start") {
        title.textContent = formatCount(arc.frequency) + " cases start with " + arc.activity.name;
      } else {
        title.textContent = formatCount(arc.frequency) + " cases end with " + arc.activity.name;
      }
      if (arc.loopNode) {
        // A self-loop: a small loop on the activity's right side, its label just beyond it (dagre's own
        // loop fills the whole space it kept for the label).
        const loop = selfLoop(arc.loopNode, arc.strokeWidth);
        arc.points = loop.points;
        arc.labelX = loop.labelX + arc.labelWidth / 2 - 2;
        arc.labelY = loop.labelY;
      }
      if (arc.points.length < 2) return;
      const shape = withArrow(arc.points, arc.strokeWidth);
      arc.line = svg(
        "path",
        {
          class: "pm-edge-line",
          d: splinePath(shape.line),
          fill: "none",
          "stroke-width": arc.strokeWidth,
          "stroke-linecap": "butt",
          "stroke-linejoin": "round",
          "stroke-dasharray": arc.kind === "path" ? null : "5 4",
        },
        group,
      );
      arc.head = svg("path", { class: "pm-edge-head", d: shape.head, "stroke-linejoin": "round" }, group);
      arc.label = svg(
        "text",
        {
          class: "pm-edge-label",
          // Left-aligned in the space dagre kept right of the line, so short and long labels both hug it.
          x: r2(arc.labelX - arc.labelWidth / 2 + 2),
          y: r2(arc.labelY),
          dy: "0.35em",
          "text-anchor": "start",
          "font-size": 12,
          fill: COLOURS.label,
          stroke: COLOURS.halo,
          "stroke-width": 3.5,
          "stroke-linejoin": "round",
          "paint-order": "stroke",
        },
        group,
      );
    }

    drawNode(layer, node, minEvents, maxEvents) {
      const x = r2(node.x);
      const y = r2(node.y);
      if (node.terminal) {
        const isStart = node.terminal === "start";
        const group = svg(
          "g",
          {
            class: "pm-node pm-terminal",
            "data-terminal": node.terminal,
            transform: "translate(" + x + "," + y + ")",
          },
          layer,
        );
        svg("title", null, group).textContent = isStart ? "Process start" : "Process end";
        svg(
          "circle",
          {
            r: TERMINAL_RADIUS,
            fill: isStart ? COLOURS.start : COLOURS.end,
            stroke: isStart ? COLOURS.startStroke : COLOURS.endStroke,
            "stroke-width": 1.5,
          },
          group,
        );
        svg(
          "text",
          {
            "text-anchor": "middle",
            dy: "0.35em",
            "font-size": 12,
            "font-weight": 700,
            fill: COLOURS.textLight,
          },
          group,
        ).textContent = isStart ? "\u25B6 start" : "\u25A0 end";
        return;
      }
      const activity = node.activity;
      const t = logPosition(activity.events, minEvents, maxEvents);
      const fill = mix(COLOURS.nodeLow, COLOURS.nodeHigh, 0.08 + 0.92 * t);
      const textColour = luminance(fill) < 0.3 ? COLOURS.textLight : COLOURS.textDark;
      const group = svg(
        "g",
        {
          class: "pm-node",
          "data-activity": activity.name,
          "data-events": activity.events,
          transform: "translate(" + x + "," + y + ")",
        },
        layer,
      );
      svg("title", null, group).textContent =
        activity.name +
        ": " +
        formatCount(activity.events) +
        " events in " +
        formatCount(activity.cases) +
        " cases";
      svg(
        "rect",
        {
          x: -node.width / 2,
          y: -node.height / 2,
          width: node.width,
          height: node.height,
          rx: NODE.radius,
          ry: NODE.radius,
          fill: fill,
          stroke: COLOURS.nodeStroke,
          "stroke-width": 1.2,
        },
        group,
      );
      const top = -node.height / 2 + NODE.padY;
      node.lines.forEach((line, i) => {
        svg(
          "text",
          {
            class: "pm-node-name",
            y: r2(top + i * NODE.nameLine + 13),
            "text-anchor": "middle",
            "font-size": 14,
            "font-weight": 600,
            fill: textColour,
          },
          group,
        ).textContent = line;
      });
      svg(
        "text",
        {
          class: "pm-node-count",
          y: r2(top + node.lines.length * NODE.nameLine + 12),
          "text-anchor": "middle",
          "font-size": 12,
          fill: textColour,
        },
        group,
      ).textContent = node.countText;
    }

    setMode(mode) {
      if (mode === this.mode) return;
      this.mode = mode;
      this.modeButtons.forEach((button) =>
        button.setAttribute("aria-pressed", String(button.getAttribute("data-mode") === mode)),
      );
      this.applyMode();
    }

    // Colours and labels of the arcs for the current mode (positions stay: labels were laid out for both).
    applyMode() {
      if (!this.layout) return;
      const performance = this.mode === "performance";
      const times = this.layout.arcs
        .filter((arc) => arc.kind === "path" && arc.edge.median_s !== null)
        .map((arc) => arc.edge.median_s);
      this.timeRange = times.length ? { min: Math.min(...times), max: Math.max(...times) } : null;
      this.root.setAttribute("data-mode", this.mode);

      this.layout.arcs.forEach((arc) => {
        if (!arc.line) return;
        let colour;
        let text;
        if (arc.kind !== "path") {
          colour = COLOURS.terminalEdge;
          text = formatCount(arc.frequency);
        } else if (performance) {
          const median = arc.edge.median_s;
          colour =
            median === null || !this.timeRange
              ? COLOURS.noTime
              : ramp(COLOURS.perf, logPosition(median, this.timeRange.min, this.timeRange.max));
          text = humanizeDuration(median);
        } else {
          colour = mix(COLOURS.edgeLow, COLOURS.edgeHigh, arc.strength);
          text = formatCount(arc.frequency);
        }
        arc.line.setAttribute("stroke", colour);
        arc.head.setAttribute("fill", colour);
        arc.head.setAttribute("stroke", colour);
        arc.head.setAttribute("stroke-width", "1");
        arc.label.textContent = text;
        arc.label.setAttribute("font-weight", performance && arc.kind === "path" ? "600" : "400");
        arc.label.setAttribute(
          "fill",
          performance && arc.kind === "path" ? mix(colour, "#000000", 0.35) : COLOURS.label,
        );
      });
      this.drawLegend();
    }

    drawLegend() {
      const legend = buildLegend(this.mode, this.timeRange);
      this.legendSvg.textContent = "";
      this.legendSvg.setAttribute("width", String(legend.width + 2));
      this.legendSvg.setAttribute("height", String(legend.height));
      this.legendSvg.setAttribute("viewBox", "0 0 " + (legend.width + 2) + " " + legend.height);
      this.legendSvg.appendChild(legend.node);
    }

    // -- zoom and pan -------------------------------------------------------------------------------

    applyTransform() {
      const v = this.view;
      this.viewport.setAttribute(
        "transform",
        "translate(" + r2(v.x) + "," + r2(v.y) + ") scale(" + Math.round(v.k * 1000) / 1000 + ")",
      );
    }

    size() {
      return { width: this.canvas.clientWidth, height: this.canvas.clientHeight };
    }

    fit() {
      if (!this.layout) return;
      const box = this.size();
      if (!box.width || !box.height) return;
      const pad = 16;
      const w = Math.max(1, this.layout.width);
      const h = Math.max(1, this.layout.height);
      const k = Math.max(0.05, Math.min(1.25, (box.width - 2 * pad) / w, (box.height - 2 * pad) / h));
      this.view = { k: k, x: (box.width - w * k) / 2, y: Math.max(pad, (box.height - h * k) / 2) };
      this.moved = false;
      this.applyTransform();
    }

    zoomBy(factor, cx, cy) {
      const box = this.size();
      const px = cx === undefined ? box.width / 2 : cx;
      const py = cy === undefined ? box.height / 2 : cy;
      const v = this.view;
      const k = Math.max(0.05, Math.min(8, v.k * factor));
      this.view = { k: k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
      this.moved = true;
      this.applyTransform();
    }

    panBy(dx, dy) {
      this.view = { k: this.view.k, x: this.view.x + dx, y: this.view.y + dy };
      this.moved = true;
      this.applyTransform();
    }

    bindNavigation() {
      const canvas = this.canvas;
      canvas.addEventListener(
        "wheel",
        (event) => {
          if (!this.layout) return;
          event.preventDefault();
          const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
          const rect = canvas.getBoundingClientRect();
          this.zoomBy(
            Math.exp(-event.deltaY * unit * 0.0015),
            event.clientX - rect.left,
            event.clientY - rect.top,
          );
        },
        { passive: false },
      );

      let drag = null;
      canvas.addEventListener("pointerdown", (event) => {
        if (event.button !== 0 || !this.layout) return;
        drag = { id: event.pointerId, x: event.clientX, y: event.clientY };
        canvas.setPointerCapture(event.pointerId);
        canvas.classList.add("pm-dragging");
      });
      canvas.addEventListener("pointermove", (event) => {
        if (!drag || event.pointerId !== drag.id) return;
        this.panBy(event.clientX - drag.x, event.clientY - drag.y);
        drag.x = event.clientX;
        drag.y = event.clientY;
      });
      const stop = (event) => {
        if (!drag || event.pointerId !== drag.id) return;
        drag = null;
        canvas.classList.remove("pm-dragging");
        if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
      };
      canvas.addEventListener("pointerup", stop);
      canvas.addEventListener("pointercancel", stop);

      canvas.addEventListener("keydown", (event) => {
        if (!this.layout || event.altKey || event.ctrlKey || event.metaKey) return;
        const step = 60;
        const actions = {
          "+": () => this.zoomBy(1.25),
          "=": () => this.zoomBy(1.25),
          "-": () => this.zoomBy(1 / 1.25),
          _: () => this.zoomBy(1 / 1.25),
          0: () => this.fit(),
          ArrowLeft: () => this.panBy(step, 0),
          ArrowRight: () => this.panBy(-step, 0),
          ArrowUp: () => this.panBy(0, step),
          ArrowDown: () => this.panBy(0, -step),
        };
        const action = actions[event.key];
        if (action) {
          event.preventDefault();
          action();
        }
      });

      // Hovering an activity highlights its paths.
      this.viewport.addEventListener("pointerover", (event) => {
        const node = event.target.closest && event.target.closest(".pm-node[data-activity]");
        this.highlight(node ? node.getAttribute("data-activity") : null);
      });
      this.viewport.addEventListener("pointerleave", () => this.highlight(null));
    }

    highlight(name) {
      if (name === this.highlighted) return;
      this.highlighted = name;
      this.svg.classList.toggle("pm-dimmed", name !== null);
      this.viewport.querySelectorAll(".pm-hl").forEach((el) => el.classList.remove("pm-hl"));
      if (name === null) return;
      this.viewport.querySelectorAll(".pm-node, .pm-edge").forEach((el) => {
        const related =
          el.getAttribute("data-activity") === name ||
          el.getAttribute("data-source") === name ||
          el.getAttribute("data-target") === name;
        if (related) el.classList.add("pm-hl");
      });
    }

    observeSize() {
      if (this.resizeObserver || typeof ResizeObserver === "undefined") return;
      this.resizeObserver = new ResizeObserver(() => {
        if (!this.root.isConnected) {
          this.resizeObserver.disconnect();
          return;
        }
        if (!this.moved) this.fit();
      });
      this.resizeObserver.observe(this.canvas);
    }

    // -- downloads ----------------------------------------------------------------------------------

    // A standalone SVG document of the whole map (not the zoomed view), with the legend below it.
    exportSvg() {
      const layout = this.layout;
      const legend = buildLegend(this.mode, this.timeRange);
      const margin = 16;
      const width = Math.max(layout.width, legend.width + 2 * margin);
      const height = layout.height + legend.height + margin;
      const root = document.createElementNS(SVG_NS, "svg");
      root.setAttributeNS(XMLNS_NS, "xmlns", SVG_NS);
      svgAttributes(root, {
        version: "1.1",
        width: width,
        height: height,
        viewBox: "0 0 " + width + " " + height,
        "font-family": FONT,
      });
      svg("title", null, root).textContent = this.canvas.getAttribute("aria-label");
      svg("rect", { x: 0, y: 0, width: width, height: height, fill: COLOURS.background }, root);
      const content = this.viewport.cloneNode(true);
      content.removeAttribute("transform");
      content.removeAttribute("class");
      content.querySelectorAll(".pm-hl").forEach((el) => el.classList.remove("pm-hl"));
      root.appendChild(content);
      legend.node.setAttribute("transform", "translate(" + margin + "," + layout.height + ")");
      root.appendChild(legend.node);
      return { text: new XMLSerializer().serializeToString(root), width: width, height: height };
    }

    fileName(extension) {
      const base = (this.root.getAttribute("data-filename") || "process-map").replace(/[^\w.-]+/g, "-");
      return base + "-" + this.mode + "." + extension;
    }

    downloadSvg() {
      if (!this.layout) return;
      const exported = this.exportSvg();
      saveBlob(new Blob([exported.text], { type: "image/svg+xml;charset=utf-8" }), this.fileName("svg"));
    }

    downloadPng() {
      if (!this.layout) return;
      const exported = this.exportSvg();
      const scale = Math.max(0.25, Math.min(2, 8000 / Math.max(exported.width, exported.height)));
      const image = new Image();
      image.onload = () => {
        const canvas = document.createElement("canvas");
        canvas.width = Math.round(exported.width * scale);
        canvas.height = Math.round(exported.height * scale);
        const context = canvas.getContext("2d");
        context.fillStyle = COLOURS.background;
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.drawImage(image, 0, 0, canvas.width, canvas.height);
        canvas.toBlob((blob) => {
          if (blob) saveBlob(blob, this.fileName("png"));
        }, "image/png");
      };
      image.onerror = () => {
        this.summary.textContent = "Could not make the PNG image.";
      };
      // A data: URL (not blob:) so that an img-src of 'self' data: is enough.
      image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(exported.text);
    }
  }

  function svgAttributes(el, attributes) {
    Object.keys(attributes).forEach((name) => el.setAttribute(name, String(attributes[name])));
  }

  function saveBlob(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 30000);
  }

  // ---------------------------------------------------------------------------------------------------
  // Start-up: every [data-process-map], now and after htmx swaps
  // ---------------------------------------------------------------------------------------------------

  function init(scope) {
    const base = scope && scope.querySelectorAll ? scope : document;
    const found = Array.from(base.querySelectorAll("[data-process-map]"));
    if (base.matches && base.matches("[data-process-map]")) found.unshift(base);
    found.forEach((el) => {
      if (!instances.has(el)) instances.set(el, new ProcessMap(el));
    });
  }

  window.JourneylensProcessMap = {
    init: init,
    humanizeDuration: humanizeDuration,
    instance: (el) => instances.get(el) || null,
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => init(document));
  } else {
    init(document);
  }
  document.addEventListener("htmx:load", (event) => init((event.detail && event.detail.elt) || document));
  // After a swap the target may be a detached element (outerHTML swaps): look at the whole document.
  document.addEventListener("htmx:afterSettle", () => init(document));
})();
