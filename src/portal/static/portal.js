// auth-o-tron token portal: the Copy button of a new token (the page works without it).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var panel = document.getElementById("created");
  if (panel) {
    panel.focus();
  }
  var button = document.getElementById("copy");
  var input = document.getElementById("secret");
  var status = document.getElementById("copy-status");
  if (!button || !input || !status) {
    return;
  }
  button.addEventListener("click", function () {
    var done = function () {
      status.textContent = "Copied";
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        input.select();
        status.textContent = "Select the token and copy it with Ctrl+C";
      });
    } else {
      input.select();
      status.textContent = "Select the token and copy it with Ctrl+C";
    }
  });
});
