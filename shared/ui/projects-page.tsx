import type { Hono } from 'hono';
import { mapLimit } from '../map-limit.js';
import { listProjects, type ProjectStatus, projectStatus } from '../pipeline/project-status.js';
import { fixed, Page } from './layout.js';
import type { UiContext } from './ui-context.js';

function trainingText(s: ProjectStatus): string {
  if (s.training.state === 'training') return 'training now';
  const last = s.training.lastOutcome;
  if (!last) return s.training.state === 'never' ? 'never trained' : 'idle';
  return `idle (last: ${last.status})`;
}

function Row(props: { s: ProjectStatus }) {
  const { s } = props;
  return (
    <tr>
      <td>
        <a href={`/ui/p/${s.project}/data`}>{s.project}</a>
      </td>
      <td>{s.model.version ?? 'none yet'}</td>
      <td class="num">{fixed(s.model.metrics?.accuracy)}</td>
      <td class="num">{s.dataset.examples}</td>
      <td class="num">{Object.keys(s.dataset.labels).length}</td>
      <td class="num">{s.quarantined.length}</td>
      <td>{trainingText(s)}</td>
    </tr>
  );
}

/** Every project with its current version, validation accuracy, photos and training state. */
export function registerProjectsPage(app: Hono, ctx: UiContext): void {
  app.get('/', async (c) => {
    const projects = await listProjects(ctx.store);
    const rows = await mapLimit(projects, 4, (p) => projectStatus(ctx.store, p, { snapshot: ctx.snapshot }));
    return c.html(
      <Page title="Projects" token={ctx.token} notice={ctx.notices.take(c.req.query('notice'))}>
        <p class="where">Store: {ctx.store.description}</p>
        {rows.length === 0 ? (
          <p>No projects yet. Name one below and upload a folder of label folders to start it.</p>
        ) : (
          <table id="projects">
            <thead>
              <tr>
                <th>project</th>
                <th>current version</th>
                <th>accuracy</th>
                <th>photos</th>
                <th>labels</th>
                <th>set aside</th>
                <th>training</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <Row s={s} />
              ))}
            </tbody>
          </table>
        )}
        <form method="get" action="/ui/new" class="inline">
          <label>
            New project{' '}
            <input name="project" required pattern="[a-z0-9][a-z0-9\-]{0,61}" placeholder="closet" />
          </label>
          <button type="submit">Open</button>
        </form>
      </Page>,
    );
  });
  app.get('/new', (c) => {
    const p = c.req.query('project') ?? '';
    return c.redirect(`/ui/p/${encodeURIComponent(p)}/data`, 303);
  });
}
