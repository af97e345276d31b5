// Operator UI: live updates over WebSockets, toasts and desktop notifications.
//
// Each page names its sockets in <meta name="live-socket" content="/ws/...">. A socket only
// carries notices ({"kind": "run"|"step"|"approval"|"event", ...}); elements that show live data
// carry data-live-on="<kinds>" and data-live-url="<fragment url>", and are re-fetched (through
// the same permission-checked views) when a notice of their kind arrives. Refreshes of one
// element never overlap, and a burst of notices ends in one refresh with the latest state.
(function () {
  "use strict";

  const statusEl = () => document.getElementById("live-status");
  const sockets = {};

  function setLiveState(state) {
    const el = statusEl();
    if (!el) return;
    el.dataset.state = state;
    el.querySelector(".label").textContent =
      state === "open" ? "Live" : state === "closed" ? "Reconnecting…" : "Connecting";
  }

  // --- refreshing live regions ---------------------------------------------------------------

  const regionState = {}; // element id -> {busy, again, last}

  function openDetails(el) {
    return Array.from(el.querySelectorAll("details[open]")).map(detailsKey);
  }

  function detailsKey(d) {
    const step = d.closest("[data-step]");
    const summary = d.querySelector("summary");
    return (step ? step.dataset.step : "") + "|" + (summary ? summary.textContent.trim() : "");
  }

  function refresh(el) {
    const id = el.id;
    const state = (regionState[id] = regionState[id] || { busy: false, again: false, last: 0 });
    if (state.busy) { state.again = true; return; }
    const wait = Math.max(0, (Number(el.dataset.liveMinInterval) || 0) - (Date.now() - state.last));
    state.busy = true;
    setTimeout(function () {
      const current = document.getElementById(id);
      if (!current) { state.busy = false; return; }
      const keep = openDetails(current);
      const known = new Set(Array.from(current.querySelectorAll("[data-approval],[data-run]")).map(rowKey));
      state.last = Date.now();
      fetch(current.dataset.liveUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.redirected || !response.ok) throw new Error("refresh refused: " + response.status);
          return response.text();
        })
        .then(function (html) {
          const holder = document.createElement("div");
          holder.innerHTML = html.trim();
          const fresh = holder.firstElementChild;
          if (!fresh) return;
          fresh.querySelectorAll("details").forEach(function (d) {
            if (keep.indexOf(detailsKey(d)) !== -1) d.open = true;
          });
          fresh.querySelectorAll("[data-approval],[data-run]").forEach(function (row) {
            if (!known.has(rowKey(row))) row.classList.add("flash");
          });
          current.replaceWith(fresh);
          if (window.htmx) window.htmx.process(fresh);
          document.dispatchEvent(new CustomEvent("live:refreshed", { detail: { id: id } }));
        })
        .then(function () { state.failures = 0; })
        .catch(function (err) {
          // A busy server (or a deploy) refused the refresh: try again, a little later each
          // time, so the page never stays behind after the last notice.
          console.warn(err);
          state.failures = (state.failures || 0) + 1;
          if (state.failures <= 6) state.again = true;
        })
        .finally(function () {
          state.busy = false;
          if (!state.again) return;
          state.again = false;
          const delay = state.failures ? 500 * state.failures : 0;
          setTimeout(function () { const again = document.getElementById(id); if (again) refresh(again); }, delay);
        });
    }, wait);
  }

  function rowKey(row) { return row.dataset.approval || row.dataset.run; }

  function refreshAll(kind, message) {
    document.querySelectorAll("[data-live-on]").forEach(function (el) {
      const kinds = el.dataset.liveOn.split(/\s+/);
      if (kind && kinds.indexOf(kind) === -1) return;
      if (message && el.dataset.liveMatch && el.dataset.liveMatch !== String(message.approval_id)) return;
      refresh(el);
    });
  }

  // --- toasts and notifications --------------------------------------------------------------

  function toast(html, tone) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const t = document.createElement("div");
    t.className = "toast" + (tone ? " toast-" + tone : "");
    t.setAttribute("role", "status");
    t.innerHTML = "<span>" + html + "</span>";
    const close = document.createElement("button");
    close.className = "toast-close"; close.type = "button"; close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    t.appendChild(close);
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, 8000);
  }

  function escapeHtml(text) {
    const div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function announceApproval(message) {
    if (message.action !== "created" && message.action !== "escalated") return;
    const url = "/app/approvals/" + message.approval_id + "/";
    toast("New approval: <a href=\"" + url + "\">" + escapeHtml(message.title) + "</a>");
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const n = new Notification("Approval needed", { body: message.title, tag: message.approval_id });
      n.onclick = function () { window.focus(); window.location.href = url; };
    }
  }

  // --- copy buttons (the whole id behind a short one) ----------------------------------------

  function copyText(button) {
    const text = button.dataset.copy;
    const done = function () {
      button.dataset.copied = "true";
      toast("Copied <span class=\"mono\">" + escapeHtml(text) + "</span>", "success");
      setTimeout(function () { delete button.dataset.copied; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text) && done(); });
    } else if (fallbackCopy(text)) {
      done();
    }
  }

  // Pages served over plain HTTP to another host have no clipboard API.
  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text; area.setAttribute("readonly", ""); area.style.position = "fixed"; area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    area.remove();
    return ok;
  }

  // --- sockets -------------------------------------------------------------------------------

  function connect(path, delay) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + path);
    sockets[path] = ws;
    ws.onopen = function () {
      setLiveState("open");
      if (delay) refreshAll(null); // we may have missed notices while disconnected
      delay = 0;
    };
    ws.onmessage = function (e) {
      let message;
      try { message = JSON.parse(e.data); } catch (err) { return; }
      document.dispatchEvent(new CustomEvent("live:" + message.kind, { detail: message }));
      if (message.kind === "approval" && path === "/ws/approvals/") announceApproval(message);
      refreshAll(message.kind, message);
    };
    ws.onclose = function (e) {
      setLiveState("closed");
      // Signed out, not allowed, or no such socket: retrying cannot help, so stop.
      if (e.code === 4401 || e.code === 4403 || e.code === 4404) return;
      const next = Math.min((delay || 500) * 2, 15000);
      setTimeout(function () { connect(path, next); }, next);
    };
  }

  function start() {
    document.querySelectorAll('meta[name="live-socket"]').forEach(function (m) { connect(m.content, 0); });
    if (!document.querySelector('meta[name="live-socket"]')) statusEl() && statusEl().remove();

    document.addEventListener("click", function (e) {
      if (e.target.closest(".toast-close")) e.target.closest(".toast").remove();
      const copy = e.target.closest("[data-copy]");
      if (copy) copyText(copy);
    });
    document.querySelectorAll(".toast").forEach(function (t) { setTimeout(function () { t.remove(); }, 8000); });

    const notify = document.getElementById("enable-notifications");
    if (notify && "Notification" in window && Notification.permission === "default") {
      notify.hidden = false;
      notify.addEventListener("click", function () {
        Notification.requestPermission().then(function () { notify.hidden = true; });
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
