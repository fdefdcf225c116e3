// The REST API as the Web UI reads it. Paths are relative to the page, so the UI also works
// behind a proxy that serves the JobManager under a path prefix (YARN's web proxy).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Thrown when the JobManager does not answer at all (stopped, network down). */
export class ConnectionLost extends Error {}

async function request(method, path, accept) {
  let response;
  try {
    response = await fetch(path, {method, headers: {Accept: accept}, cache: "no-store"});
  } catch (e) {
    throw new ConnectionLost(`the JobManager does not answer (${e.message})`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && Array.isArray(body.errors) && body.errors.length) message = body.errors.join("; ");
    } catch (e) {
      // not Flink's {"errors": [...]}: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

/** GET a JSON resource; throws ApiError (with the server's message) or ConnectionLost. */
export async function getJson(path) {
  return (await request("GET", path, "application/json")).json();
}

/** GET a text resource (a log file). */
export async function getText(path) {
  return (await request("GET", path, "text/plain")).text();
}

/** PATCH a resource (cancelling a job). */
export async function patch(path) {
  return (await request("PATCH", path, "application/json")).text();
}

/**
 * GET a JSON resource that this cluster may not serve (an endpoint of a newer release, a job
 * without checkpoints): {data} when it answered, {missing: reason} on 404/405/501.
 */
export async function optional(path) {
  try {
    return {data: await getJson(path)};
  } catch (e) {
    if (e instanceof ApiError && [404, 405, 501].includes(e.status)) return {missing: e.message};
    throw e;
  }
}

/** Encode one path segment (ids and file names come from the server, but may contain anything). */
export function seg(value) {
  return encodeURIComponent(String(value));
}
