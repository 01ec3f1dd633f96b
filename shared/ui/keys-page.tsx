import type { Hono } from 'hono';
import { type ApiKeyInfo, createKey, listKeys, revokeKey } from '../auth/index.js';
import { Csrf, Page } from './layout.js';
import { done, field, projectParam, projectPath, type UiContext } from './ui-context.js';
import { UiError } from './ui-errors.js';

function KeysTable(props: { project: string; token: string; keys: ApiKeyInfo[] }) {
  if (props.keys.length === 0) return <p id="no-keys">No keys.</p>;
  return (
    <table id="keys">
      <thead>
        <tr>
          <th>key id</th>
          <th>name</th>
          <th>created</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.keys.map((k) => (
          <tr data-key-id={k.keyId}>
            <td>
              <code>{k.keyId}</code>
            </td>
            <td>{k.name ?? ''}</td>
            <td>{k.createdAt}</td>
            <td>
              <form method="post" action={projectPath(props.project, 'keys/revoke')} class="inline">
                <Csrf token={props.token} />
                <input type="hidden" name="keyId" value={k.keyId} />
                <button type="submit" class="danger">
                  Revoke
                </button>
              </form>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** API keys: created and shown once (in the answer to the POST, never in a URL or a stored notice), listed, revoked. */
export function registerKeysPage(app: Hono, ctx: UiContext): void {
  const render = async (
    project: string,
    token: string,
    notice: { text: string; kind: 'ok' | 'error' } | undefined,
    created?: string,
  ) => {
    const keys = await listKeys(ctx.store, project);
    return (
      <Page title="API keys" token={token} project={project} active="keys" notice={notice}>
        {created ? (
          <section class="panel" id="new-key">
            <h2>New key: shown once, copy it now</h2>
            <p>
              <code id="new-key-value">{created}</code>
            </p>
            <p>
              Send it as <code>Authorization: Bearer &lt;key&gt;</code>. Only its hash is stored.
            </p>
          </section>
        ) : null}
        <KeysTable project={project} token={token} keys={keys} />
        <form method="post" action={projectPath(project, 'keys/create')} class="inline panel">
          <Csrf token={token} />
          <label>
            name <input name="name" placeholder="mobile app" maxlength={100} />
          </label>
          <button type="submit" id="create-key">
            Create key
          </button>
        </form>
      </Page>
    );
  };
  app.get('/p/:project/keys', async (c) => {
    const project = projectParam(c);
    return c.html(await render(project, ctx.token, ctx.notices.take(c.req.query('notice'))));
  });
  app.post('/p/:project/keys/create', async (c) => {
    const project = projectParam(c);
    const name = ((await field(c, 'name')) ?? '').trim();
    const k = await createKey(ctx.store, project, name ? { name } : {});
    const page = await render(project, ctx.token, { text: `created key ${k.info.keyId}`, kind: 'ok' }, k.key);
    return c.html(page, 201);
  });
  app.post('/p/:project/keys/revoke', async (c) => {
    const project = projectParam(c);
    const keyId = (await field(c, 'keyId')) ?? '';
    const existed = await revokeKey(ctx.store, project, keyId);
    if (!existed)
      throw new UiError('unknown_key', `project '${project}' has no key '${keyId}'`, { status: 404 });
    return done(ctx, c, {
      back: projectPath(project, 'keys'),
      message: `revoked ${keyId} (API instances that cached it stop accepting it within their TTL)`,
    });
  });
}
