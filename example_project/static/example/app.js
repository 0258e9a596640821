// The demo's one client of the API: jwt_sessions' browser module, as an app would use it.
// Every page imports `client` from here; the "signed out" banner is shared by all pages.
import {createClient} from "../jwt_sessions/client.js";

// jwt_sessions.urls is included at the prefix of its login URL ("/auth/login/" -> "/auth/").
const loginUrl = new URL(document.body.dataset.loginUrl, location.href);
export const client = createClient({baseUrl: new URL("../", loginUrl).pathname});

client.onSignedOut((code) => {
  const banner = document.getElementById("signed-out");
  banner.dataset.code = code;
  banner.querySelector(".code").textContent = code;
  banner.hidden = false;
});

/** "Mobile Safari 17 on iOS (iPhone)" from a session of `client.sessions()`. */
export function deviceName(session) {
  let name = session.browser || "Unknown browser";
  if (session.os) name += ` on ${session.os}`;
  if (session.device && !["Other", "Generic Desktop"].includes(session.device)) {
    name += ` (${session.device})`;
  }
  return name;
}
