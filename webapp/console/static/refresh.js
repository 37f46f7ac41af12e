// Reloads a page that shows unfinished work every few seconds (body data-refresh), unless the
// operator is busy with a form: a reload would throw away a half-typed reason or filter.
// Without scripts, the <noscript> meta refresh in base.html does the same, less politely.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh"));
  if (!seconds) {
    return;
  }
  function busy() {
    var focused = document.activeElement;
    if (focused && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(focused.tagName)) {
      return true;
    }
    var reasons = document.querySelectorAll("input[name=reason]");
    for (var i = 0; i < reasons.length; i += 1) {
      if (reasons[i].value !== "") {
        return true;
      }
    }
    return false;
  }
  window.setInterval(function () {
    if (!busy()) {
      window.location.reload();
    }
  }, seconds * 1000);
})();
