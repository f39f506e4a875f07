// The page behaviour that used to sit in inline handlers (onsubmit, onchange, hx-on), which the
// Content-Security-Policy forbids. Each is declared by a data- attribute in the templates.
(function () {
  "use strict";

  // <form data-confirm="Question?">: ask before submitting.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <select data-autosubmit>: submit its form when the choice changes.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.submit();
    }
  });

  function clear(selector) {
    var box = selector && document.querySelector(selector);
    if (box) {
      box.innerHTML = "";
      if (box instanceof HTMLDialogElement && box.open) {
        box.close();
      }
    }
  }

  // <dialog id="confirm-box">: a confirmation swapped into it opens as a modal where the operator is
  // looking (not at the top of a long list); Escape or Cancel closes it.
  document.addEventListener("htmx:afterSwap", function (event) {
    var box = event.detail && event.detail.target;
    if (box instanceof HTMLDialogElement && !box.open && box.children.length && box.showModal) {
      box.showModal();
      var first = box.querySelector("button, a");
      if (first) {
        first.focus();
      }
    }
  });

  // <a data-clear="#box">: empty the box instead of following the link (the link still works without JS).
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("[data-clear]") : null;
    if (link) {
      event.preventDefault();
      clear(link.getAttribute("data-clear"));
    }
  });

  // <form data-clear-after-request="#box">: empty the box once the form's htmx request is done.
  document.addEventListener("htmx:afterRequest", function (event) {
    var source = event.target instanceof Element ? event.target.closest("[data-clear-after-request]") : null;
    if (source) {
      clear(source.getAttribute("data-clear-after-request"));
    }
  });
})();
