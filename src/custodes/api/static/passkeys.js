// The passkey ceremonies, in the browser. The server sends WebAuthn options as JSON
// (binary values in base64url); they are turned into ArrayBuffers for
// navigator.credentials, and the answer is turned back into JSON for the server.
"use strict";

const b64urlToBuffer = (value) => {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "===".slice((base64.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
};

const bufferToB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${data.detail}`);
  return data;
}

function creationOptions(options) {
  const publicKey = { ...options };
  publicKey.challenge = b64urlToBuffer(options.challenge);
  publicKey.user = { ...options.user, id: b64urlToBuffer(options.user.id) };
  publicKey.excludeCredentials = (options.excludeCredentials || []).map((c) => ({
    ...c, id: b64urlToBuffer(c.id),
  }));
  return { publicKey };
}

function requestOptions(options) {
  const publicKey = { ...options };
  publicKey.challenge = b64urlToBuffer(options.challenge);
  publicKey.allowCredentials = (options.allowCredentials || []).map((c) => ({
    ...c, id: b64urlToBuffer(c.id),
  }));
  return { publicKey };
}

function credentialJson(credential) {
  const response = {};
  for (const key of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
    if (credential.response[key]) response[key] = bufferToB64url(credential.response[key]);
  }
  if (credential.response.getTransports) response.transports = credential.response.getTransports();
  return {
    id: credential.id,
    rawId: bufferToB64url(credential.rawId),
    type: credential.type,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment,
  };
}

const custodes = {
  login: (username, password, totp) => post("/auth/login", { username, password, totp }),
  logout: () => post("/auth/logout"),
  session: async () => (await fetch("/auth/session", { credentials: "same-origin" })).json(),
  stepUpAllowed: async (operation) =>
    (await fetch(`/auth/step-up/${operation}`, { credentials: "same-origin" })).status,
  async register() {
    const { ceremony, publicKey } = await post("/auth/passkeys/register/options");
    const credential = await navigator.credentials.create(creationOptions(publicKey));
    return post("/auth/passkeys/register/verify", { ceremony, credential: credentialJson(credential) });
  },
  async passkeyLogin(username) {
    const { ceremony, publicKey } = await post("/auth/passkeys/login/options", { username });
    const credential = await navigator.credentials.get(requestOptions(publicKey));
    return post("/auth/passkeys/login/verify", { ceremony, credential: credentialJson(credential) });
  },
  async stepUp() {
    const { ceremony, publicKey } = await post("/auth/passkeys/step-up/options");
    const credential = await navigator.credentials.get(requestOptions(publicKey));
    return post("/auth/passkeys/step-up/verify", { ceremony, credential: credentialJson(credential) });
  },
};
window.custodes = custodes;

function show(promise) {
  const status = document.getElementById("status");
  promise.then(
    (data) => { status.textContent = JSON.stringify(data.user ? data : { ok: true }); },
    (error) => { status.textContent = String(error.message || error); },
  );
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    show(custodes.login(form.get("username"), form.get("password"), form.get("totp")));
  });
  document.getElementById("show-password").onchange = (event) => {
    document.getElementById("password").type = event.target.checked ? "text" : "password";
  };
  document.getElementById("passkey-login").onclick = () => show(custodes.passkeyLogin());
  document.getElementById("passkey-register").onclick = () => show(custodes.register());
  document.getElementById("passkey-step-up").onclick = () => show(custodes.stepUp());
  document.getElementById("logout").onclick = () => show(custodes.logout());
});
