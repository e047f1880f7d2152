// Journeylens: small behaviours without inline script (the CSP forbids it).
(function () {
  "use strict";
  var token = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };
  // Every htmx request carries the CSRF token as a header (Flask-WTF reads X-CSRFToken).
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = token();
  });
  // A refusal (409 conflict, 422 invalid input) carries a fragment that explains it: show it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // A menu loaded when first opened ("toggle once") but opened before htmx had bound that trigger (a
  // quick click while the page loads) would stay empty: load it once htmx is ready.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail && event.detail.elt;
    if (!root || !root.querySelectorAll || !window.htmx) {
      return;
    }
    root.querySelectorAll("details[open][hx-trigger^='toggle']").forEach(function (menu) {
      window.htmx.trigger(menu, "toggle");
    });
  });
  // Forms that destroy something ask first.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);
  // Uploads show their progress (htmx reports the XHR's upload progress).
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target && event.target.closest ? event.target.closest("form") : null;
    var box = form ? form.querySelector(".upload-progress") : null;
    if (!box || !event.detail || !event.detail.total) {
      return;
    }
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    box.hidden = false;
    box.querySelector("progress").value = percent;
    box.querySelector("[data-upload-percent]").textContent = String(percent);
  });
  // Secrets shown once are selected on focus, ready to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target.hasAttribute && event.target.hasAttribute("data-select-on-focus")) {
      event.target.select();
    }
  });
})();
