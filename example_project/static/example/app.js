// The demo's one client of the API: jwt_sessions' browser module, as an app would use it.
// Every page imports `client` from here; the "signed out" banner is shared by all pages.
import {createClient} from "../jwt_sessions/client.js";

// jwt_sessions.urls is included at the prefix of its login URL ("/auth/login/" -> "/auth/").
const loginUrl = new URL(document.body.dataset.loginUrl, location.href);
export const client = createClient({baseUrl: new URL("../", loginUrl).pathname});

// What a person reads for each answer that ends (or never had) a session.
const WORDS = {
  logout: "You signed out.",
  session_revoked: "You were signed out: this session was ended from another device or in the admin.",
  refresh_token_reused: "You were signed out: this session's refresh token was used twice, " +
    "which looks like theft, so the session was ended.",
  refresh_token_invalid: "Your sign-in has expired: please log in again.",
  refresh_token_missing: "You are not signed in.",
  not_authenticated: "You are not signed in.",
  reauthentication_required: "Please confirm your password to continue.",
};

/** The demo's sentence for an error or signed-out code (the code itself if it has none). */
export function words(code) {
  return WORDS[code] || code;
}

client.onSignedOut((code) => {
  const banner = document.getElementById("signed-out");
  banner.dataset.code = code;
  banner.querySelector(".words").textContent = words(code);
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
