// The "your devices" page keeps a WebSocket open for as long as this session lives; the
// server closes it with code 4401 the moment the session is revoked, from any device.
// Browsers cannot set headers on a WebSocket, so the access token travels as a
// subprotocol ("jwt_sessions.bearer.<token>"): never in the URL, never in an access log.
// The server answers with the subprotocol "jwt_sessions", never with the token.
"use strict";

const SESSION_REVOKED = 4401;

function watchSession({ url, accessToken, onSignedOut, onDropped }) {
  const socket = new WebSocket(url, ["jwt_sessions", `jwt_sessions.bearer.${accessToken()}`]);
  socket.addEventListener("close", (event) => {
    if (event.code === SESSION_REVOKED) onSignedOut();
    else onDropped();
  });
  return socket;
}
