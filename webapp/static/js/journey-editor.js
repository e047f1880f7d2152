// Journeylens journey editor: drag and drop of steps and stages (SortableJS), pausing live updates while
// someone edits, and closing conflict views. No inline script (CSP); everything hangs off data attributes.
(function () {
  "use strict";

  function board() {
    return document.getElementById("board");
  }

  function editable() {
    var b = board();
    return b && b.querySelector(".add-step") !== null;
  }

  function boardUrl() {
    var b = board();
    return b ? b.getAttribute("hx-get").split("?")[0] : null;
  }

  function refreshBoard() {
    var url = boardUrl();
    if (url && window.htmx) {
      window.htmx.ajax("GET", url, { target: "#board", swap: "outerHTML" });
    }
  }

  // Where a dropped step goes within its stage: before the step that now follows it in the cell,
  // after the one before it, or last.
  function stagePosition(item) {
    var next = item.nextElementSibling;
    if (next && next.dataset.position !== undefined) {
      return next.dataset.position;
    }
    var previous = item.previousElementSibling;
    if (previous && previous.dataset.position !== undefined) {
      return String(parseInt(previous.dataset.position, 10) + 1);
    }
    return "";
  }

  function initSortable() {
    if (!window.Sortable || !editable()) {
      return;
    }
    var moveBase = board().dataset.moveUrl;
    board().querySelectorAll("ul.cell").forEach(function (cell) {
      if (cell.dataset.sortable) {
        return;
      }
      cell.dataset.sortable = "1";
      window.Sortable.create(cell, {
        group: "steps",
        draggable: "li.step",
        filter: "details, input, select, textarea, button",
        preventOnFilter: false,
        animation: 120,
        onEnd: function (event) {
          var item = event.item;
          var target = event.to;
          if (event.from === target && event.oldIndex === event.newIndex) {
            return;
          }
          window.htmx.ajax("POST", moveBase + item.dataset.stepId + "/move", {
            target: "#board",
            swap: "outerHTML",
            values: {
              expected_version: item.dataset.version,
              stage_id: target.dataset.stageId,
              lane_id: target.dataset.laneId,
              position: stagePosition(item)
            }
          });
        }
      });
    });
  }

  // Stage headers drag along the header row; the ◀ ▶ buttons stay as the keyboard alternative. A drop
  // posts the same move the buttons do, with the version the header was drawn with, so a stale drop
  // gets the conflict view (and the next poll redraws the real order).
  function initStageSortable() {
    if (!window.Sortable || !editable()) {
      return;
    }
    var row = board().querySelector("table.board thead tr");
    if (!row || row.dataset.sortable) {
      return;
    }
    row.dataset.sortable = "1";
    window.Sortable.create(row, {
      group: "stages",
      draggable: "th.stage",
      filter: "input, select, textarea, button, label",
      preventOnFilter: false,
      direction: "horizontal",
      animation: 120,
      onMove: function (event) {
        return !(event.related && event.related.classList.contains("corner"));
      },
      onEnd: function (event) {
        var header = event.item;
        if (event.oldDraggableIndex === event.newDraggableIndex) {
          return;
        }
        window.htmx.ajax("POST", header.dataset.editUrl, {
          target: "#board",
          swap: "outerHTML",
          values: {
            expected_version: header.dataset.version,
            action: "move",
            position: String(event.newDraggableIndex)
          }
        });
      }
    });
  }

  // Someone typing in a step's form must not lose it to a live update: skip polls while editing.
  function editing() {
    var b = board();
    if (!b) {
      return false;
    }
    if (b.querySelector("details.step-edit[open]")) {
      return true;
    }
    var active = document.activeElement;
    return !!(active && b.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.id === "board" && event.detail.requestConfig.verb === "get" && editing()) {
      event.preventDefault();
    }
  });
  // A poll already on its way when someone starts typing must not land on what they type either.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var elt = event.detail.elt;
    var config = event.detail.requestConfig;
    if (elt && elt.id === "board" && config && config.verb === "get" && editing()) {
      event.detail.shouldSwap = false;
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-dismiss-conflict]") : null;
    if (button) {
      document.getElementById("editor-messages").innerHTML = "";
      refreshBoard();
    }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-dismiss-conflict-on-submit")) {
      window.setTimeout(function () {
        document.getElementById("editor-messages").innerHTML = "";
      }, 0);
    }
  });

  function init() {
    initSortable();
    initStageSortable();
  }

  document.addEventListener("htmx:afterSettle", init);
  document.addEventListener("DOMContentLoaded", init);
  if (document.readyState !== "loading") {
    init();
  }
})();
