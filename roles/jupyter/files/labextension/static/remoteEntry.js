// gpubox's notices in JupyterLab, browser half (the server half is gpubox_notices.py): the idle
// stop coming and the team's budget warning, as JupyterLab notifications, for a data scientist who
// works only in the browser. A notice about the idle stop has a button that keeps the workstation
// up for an hour (the user's own hold, placed by their own server).
//
// Written by hand, without webpack or npm: JupyterLab loads a prebuilt ("federated") extension by
// running this script and calling the two functions of window._JUPYTERLAB[name], init and get.
// It imports no JupyterLab module and reaches JupyterLab only through its commands
// (apputils:notify, apputils:update-notification, apputils:dismiss-notification), so it
// holds across JupyterLab 4 releases without a rebuild.
(function () {
  'use strict';
  const NAME = 'gpubox-notices';
  const POLL_MS = 20000;
  const REQUEST_MS = 15000;
  const HOLD_HOURS = 1;

  function pageConfig(name) {
    const element = document.getElementById('jupyter-config-data');
    try {
      return element ? JSON.parse(element.textContent || '{}')[name] : undefined;
    } catch (error) {
      return undefined;
    }
  }

  // Jupyter's XSRF protection: a POST carries the _xsrf cookie's value in a header.
  function xsrfToken() {
    const found = document.cookie.match('\\b_xsrf=([^;]*)\\b');
    return found ? decodeURIComponent(found[1]) : '';
  }

  const plugin = {
    id: NAME + ':plugin',
    description: "gpubox's autostop and budget warnings",
    autoStart: true,
    activate: function (app) {
      const base = String(pageConfig('baseUrl') || '/').replace(/\/?$/, '/');
      const shown = new Map(); // a notice's id -> the id of its notification
      const dismissedByUser = new Set();

      app.commands.addCommand('gpubox:hold', {
        label: 'Keep the workstation up for an hour',
        execute: async function (args) {
          const hours = (args && args.hours) || HOLD_HOURS;
          let message;
          let type = 'success';
          try {
            const answer = await fetch(base + 'gpubox/hold', {
              method: 'POST',
              credentials: 'same-origin',
              headers: { 'Content-Type': 'application/json', 'X-XSRFToken': xsrfToken() },
              body: JSON.stringify({ hours: hours }),
              signal: AbortSignal.timeout(REQUEST_MS)
            });
            const body = await answer.json().catch(function () { return {}; });
            if (!answer.ok) {
              throw new Error(body.message || answer.statusText);
            }
            message = body.until ? 'gpubox: held until ' + body.until + ' (UTC).'
              : 'gpubox: held until you release it (runner.py release).';
          } catch (error) {
            // Short: the pop-up cuts a text at 140 characters; the details go to the console.
            console.warn('gpubox: the hold failed:', error);
            type = 'error';
            message = 'gpubox: could not hold the workstation. Run `python runner.py hold` on your computer.';
            // Clicking a button closes its notification: the warning must come back at the next poll.
            if (args && args.notice) {
              dismissedByUser.delete(args.notice);
              shown.delete(args.notice);
            }
          }
          await app.commands.execute('apputils:notify', { message: message, type: type, options: { autoClose: 10000 } });
          await poll();
        }
      });

      function actionsOf(notice) {
        return notice.hold ? [{ label: 'Keep it up 1 hour', commandId: 'gpubox:hold',
          args: { hours: HOLD_HOURS, notice: notice.id },
          caption: 'Places your hold, as `python runner.py hold --hours 1` does' }] : [];
      }

      let polling = false;
      async function poll() {
        if (polling) {
          return; // one question at a time: a slow tunnel must not pile them up or answer out of order
        }
        polling = true;
        try {
          await showNotices();
        } finally {
          polling = false;
        }
      }

      async function showNotices() {
        let notices;
        try {
          const answer = await fetch(base + 'gpubox/notices', { credentials: 'same-origin',
            signal: AbortSignal.timeout(REQUEST_MS) });
          if (!answer.ok) {
            return;
          }
          notices = (await answer.json()).notices || [];
        } catch (error) {
          return; // the server is restarting or the tunnel is down: try again at the next poll
        }
        const current = new Set(notices.map(function (notice) { return notice.id; }));
        for (const [id, notification] of Array.from(shown)) {
          if (!current.has(id)) {
            await app.commands.execute('apputils:dismiss-notification', { id: notification });
            shown.delete(id);
          }
        }
        for (const notice of notices) {
          if (dismissedByUser.has(notice.id)) {
            continue;
          }
          if (shown.has(notice.id)) {
            const updated = await app.commands.execute('apputils:update-notification', {
              id: shown.get(notice.id), message: notice.message, type: notice.type, autoClose: false,
              actions: actionsOf(notice)
            });
            if (updated === false) { // the user closed it: not shown again for this notice
              shown.delete(notice.id);
              dismissedByUser.add(notice.id);
            }
          } else {
            shown.set(notice.id, await app.commands.execute('apputils:notify', {
              message: notice.message, type: notice.type, options: { autoClose: false, actions: actionsOf(notice) }
            }));
          }
        }
      }

      app.restored.then(function () {
        const quietly = function () {
          // Without JupyterLab's notification commands (a plugin disabled) there is nothing to show.
          poll().catch(function (error) { console.warn('gpubox: notices unavailable:', error); });
        };
        quietly();
        setInterval(quietly, POLL_MS);
      });
    }
  };

  const containers = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  containers[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== './extension') {
        return Promise.reject(new Error(NAME + ' has no module ' + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: plugin }; });
    }
  };
})();
