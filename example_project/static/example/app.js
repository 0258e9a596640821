// A tiny client of the jwt_sessions API: no framework, no build step.
// The access token lives in sessionStorage (gone when the tab closes); the refresh token
// is an HttpOnly cookie that JavaScript never sees, sent only to /auth/.
const jwtDemo = (() => {
  const urls = document.body.dataset;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function send(method, url, body, access) {
    const headers = {"Content-Type": "application/json", "X-CSRFToken": csrfToken()};
    if (access) headers.Authorization = `Bearer ${access}`;
    const response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {ok: response.ok, status: response.status, body: text ? JSON.parse(text) : {}};
  }

  function remember(result) {
    if (result.ok) sessionStorage.setItem("access", result.body.access);
    return result;
  }

  function forget() {
    sessionStorage.removeItem("access");
  }

  return {
    forget,
    login: async (username, password) =>
      remember(await send("POST", urls.loginUrl, {username, password})),
    refresh: async () => remember(await send("POST", urls.refreshUrl, {})),

    // Call the API; on an expired access token, refresh once and retry.
    async api(method, url, body) {
      let result = await send(method, url, body, sessionStorage.getItem("access"));
      if (result.status === 401 && result.body.code === "token_expired") {
        if ((await this.refresh()).ok) {
          result = await send(method, url, body, sessionStorage.getItem("access"));
        }
      }
      return result;
    },

    async logout() {
      await send("POST", urls.logoutUrl, undefined, sessionStorage.getItem("access"));
      forget();
    },
  };
})();
