// The PIN pad: stays open after a wrong PIN and says how many tries are left.
import { t } from "./i18n.js";
import { ApiError, PageError, el, showError } from "./common.js";
import { $ } from "./wallet-state.js";

/** Asks for the PIN and runs `use(pin)` with it; a wrong PIN keeps the pad open with
 *  the error (and the tries left). Resolves with `use`'s answer, or null on cancel. */
export function askPin(what, use) {
  const dialog = $("pin-dialog");
  const entry = $("pin-entry");
  entry.value = "";
  $("pin-what").textContent = what;
  showError($("pin-error"), null);
  return new Promise((resolve, reject) => {
    const finish = (fn) => {
      $("pin-form").removeEventListener("submit", onSubmit);
      $("pin-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      fn();
    };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      if (!/^\d{6}$/.test(entry.value)) { showError($("pin-error"), new PageError("page_pin")); return; }
      $("pin-ok").disabled = true;
      try {
        const answer = await use(entry.value);
        finish(() => resolve(answer));
      } catch (e) {
        if (e instanceof ApiError && e.code === "incorrect_pin") {
          entry.value = "";
          showError($("pin-error"), e);
          entry.focus();
        } else {
          finish(() => reject(e));
        }
      } finally {
        $("pin-ok").disabled = false;
      }
    };
    const onCancel = (ev) => { if (ev) ev.preventDefault(); finish(() => resolve(null)); };
    $("pin-form").addEventListener("submit", onSubmit);
    $("pin-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    entry.focus();
  });
}

export function buildPinPad() {
  const pad = $("pinpad");
  const entry = $("pin-entry");
  for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0"]) {
    const isDelete = k === "⌫";
    pad.append(el("button", {
      type: "button", class: "secondary", "aria-label": isDelete ? t("delete_digit") : k,
      "data-i18n-label": isDelete ? "delete_digit" : null,
      onclick: () => {
        entry.value = isDelete ? entry.value.slice(0, -1) : (entry.value + k).slice(0, 6);
        entry.focus();
      },
    }, k));
  }
}
