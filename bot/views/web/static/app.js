// The workspace's only script besides htmx. No inline script anywhere (the CSP forbids it).
// Inside Telegram the page is opened with initData and theme colours in the URL fragment:
// initData is kept in this closure only (never in browser storage) and sent with every
// request as "Authorization: tma <initData>"; the theme becomes CSS variables.
(function () {
  "use strict";
  var fragment = new URLSearchParams(window.location.hash.slice(1));
  var initData = fragment.get("tgWebAppData") || "";
  var root = document.documentElement;
  // htmx notes the current path in sessionStorage when it loads; nothing of the workspace is
  // kept in browser storage, not even which page was open.
  try {
    window.sessionStorage.removeItem("htmx-current-path-for-history");
  } catch (e) {
    /* storage disabled: nothing to remove */
  }

  function postEvent(type, data) {
    var payload = JSON.stringify({ eventType: type, eventData: data || {} });
    try {
      if (window.TelegramWebviewProxy) {
        window.TelegramWebviewProxy.postEvent(type, JSON.stringify(data || {}));
      } else if (window.external && "notify" in window.external) {
        window.external.notify(payload);
      } else if (window.parent !== window) {
        window.parent.postMessage(payload, "https://web.telegram.org");
      }
    } catch (e) {
      /* outside Telegram: nothing to tell */
    }
  }

  var theme = fragment.get("tgWebAppThemeParams");
  if (theme) {
    try {
      var colours = JSON.parse(theme);
      Object.keys(colours).forEach(function (key) {
        if (/^#[0-9a-fA-F]{3,8}$/.test(colours[key])) {
          root.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), colours[key]);
        }
      });
      root.classList.add("telegram-theme");
    } catch (e) {
      /* a malformed theme keeps the default colours */
    }
  }
  if (initData) {
    root.classList.add("in-telegram");
    // Inside Telegram a reload has no initData: links and forms go through htmx (which adds
    // the header) and navigation stays within this page.
    htmx.config.historyEnabled = false;
    document.addEventListener("DOMContentLoaded", function () {
      document.body.setAttribute("hx-boost", "true");
      htmx.process(document.body);
    });
    // Clear the fragment so initData is not left in the address bar or a shared link.
    window.history.replaceState(null, "", window.location.pathname);
    postEvent("web_app_ready");
    postEvent("web_app_expand");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (initData) {
      event.detail.headers["Authorization"] = "tma " + initData;
    }
    var token = document.querySelector('meta[name="csrf-token"]');
    if (token && token.content) {
      event.detail.headers["X-CSRF-Token"] = token.content;
    }
  });

  // Inside Telegram every page is swapped into the first one: the document takes the language
  // of the page it now shows (the first one is in the clinic's, before anyone is known).
  document.addEventListener("htmx:afterSwap", function (event) {
    var xhr = event.detail.xhr;
    var language = xhr && xhr.getResponseHeader("Content-Language");
    if (language && event.detail.target === document.body) {
      root.setAttribute("lang", language);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var shell = document.getElementById("shell");
    if (shell && initData) {
      htmx.ajax("GET", shell.getAttribute("data-start"), { target: "body", swap: "innerHTML" });
    }
  });
})();
