// fieldproof console: keyboard review of the queue. Pages work without it; this only adds
// j/k to move between items and a/r to approve/reject (type the reason, Enter to send, Esc to
// cancel). No inline script anywhere: the page's Content-Security-Policy forbids it.
(function () {
  "use strict";
  var items = [];
  var index = 0;

  function select(i) {
    if (!items.length) return;
    index = Math.max(0, Math.min(items.length - 1, i));
    items.forEach(function (el, n) { el.classList.toggle("selected", n === index); });
    items[index].scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function startDecision(decision) {
    var item = items[index];
    if (!item) return;
    var form = item.querySelector("form.decide");
    if (!form) return;
    form.dataset.decision = decision;
    form.classList.toggle("pending-approve", decision === "approve");
    form.classList.toggle("pending-reject", decision === "reject");
    var hint = form.querySelector(".hint");
    if (hint) hint.textContent = hint.dataset[decision] || "";
    var reason = form.querySelector("textarea[name=reason]");
    if (reason) reason.focus();
  }

  function cancelDecision(form) {
    delete form.dataset.decision;
    form.classList.remove("pending-approve", "pending-reject");
    var hint = form.querySelector(".hint");
    if (hint) hint.textContent = "";
    if (document.activeElement) document.activeElement.blur();
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT");
    if (typing) {
      var form = target.closest ? target.closest("form.decide") : null;
      if (!form) return;
      if (event.key === "Escape") {
        event.preventDefault();
        cancelDecision(form);
      } else if (event.key === "Enter" && !event.shiftKey && form.dataset.decision) {
        event.preventDefault();
        var button = form.querySelector("button[value=" + form.dataset.decision + "]");
        if (button && form.requestSubmit) form.requestSubmit(button);
        else if (button) button.click();
      }
      return;
    }
    switch (event.key) {
      case "j": event.preventDefault(); select(index + 1); break;
      case "k": event.preventDefault(); select(index - 1); break;
      case "a": event.preventDefault(); startDecision("approve"); break;
      case "r": event.preventDefault(); startDecision("reject"); break;
      default: break;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    items = Array.prototype.slice.call(document.querySelectorAll("article.item"));
    items.forEach(function (el, n) {
      el.addEventListener("click", function () { if (index !== n) select(n); });
    });
    if (items.length) select(0);
    document.addEventListener("keydown", onKey);
  });
})();
