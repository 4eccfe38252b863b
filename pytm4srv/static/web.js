// The pages' own script (no inline script: the Content-Security-Policy allows none).
// 1. Tell the service the browser's time zone once (the "tz" cookie), and show the page again in it.
// 2. Submit a form whose control says data-submit-on-change when it changes (the "Time zone" choice).
// 3. A form with data-confirm-in="ID" asks in the dialog ID instead of going to its page (Delete).
(function () {
  "use strict";
  function hasZoneCookie() {
    return document.cookie.split(";").some(function (part) {
      return part.trim().indexOf("tz=") === 0;
    });
  }
  if (!hasZoneCookie()) {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      zone = "";
    }
    if (zone) {
      var secure = window.location.protocol === "https:" ? "; Secure" : "";
      document.cookie =
        "tz=" + encodeURIComponent(zone) + "; Path=/; Max-Age=34560000; SameSite=Lax" + secure;
      if (document.body && document.body.dataset.zoneTold === "0" && hasZoneCookie()) {
        window.location.reload();
      }
    }
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var id = form && form.getAttribute ? form.getAttribute("data-confirm-in") : null;
    var dialog = id ? document.getElementById(id) : null;
    if (dialog && typeof dialog.showModal === "function") {
      event.preventDefault();
      dialog.showModal();
    }
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-submit-on-change") && target.form) {
      target.form.requestSubmit();
    }
  });
})();
