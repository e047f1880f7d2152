// Journeylens comments: the thread list polls for others' comments (htmx, every 1.5 s). A poll must not
// take away what someone is writing: it is skipped while a reply has text or focus, and the folds that
// were open (a reply box, the resolved threads) are open again after a redraw. No inline script (CSP).
(function () {
  "use strict";
  if (window.journeylensComments) {
    return;
  }
  window.journeylensComments = true;
  var reopen = [];

  function threads() {
    return document.getElementById("comment-threads");
  }

  function writing(list) {
    var active = document.activeElement;
    if (active && list.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    return Array.prototype.some.call(list.querySelectorAll("textarea"), function (area) {
      return area.value.trim() !== "";
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var list = threads();
    if (list && event.detail.elt === list && event.detail.requestConfig.verb === "get" && writing(list)) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var list = threads();
    if (list && event.detail.target === list) {
      reopen = Array.prototype.map.call(list.querySelectorAll("details[open][id]"), function (fold) {
        return fold.id;
      });
    }
  });

  document.addEventListener("htmx:afterSettle", function () {
    reopen.forEach(function (id) {
      var fold = document.getElementById(id);
      if (fold) {
        fold.open = true;
      }
    });
    reopen = [];
  });
})();
