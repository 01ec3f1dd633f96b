import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import { modalityOfKey } from '../dataset/text-upload.js';

export const PAGES = [
  ['data', 'Data'],
  ['model', 'Model'],
  ['mistakes', 'Mistakes'],
  ['suspects', 'Suspects'],
  ['review', 'Review'],
  ['try', 'Try it'],
  ['keys', 'Keys'],
] as const;
export type PageName = (typeof PAGES)[number][0];

export interface PageProps {
  title: string;
  token: string;
  project?: string;
  active?: PageName;
  notice?: { text: string; kind: 'ok' | 'error' } | undefined;
  /** Reload every this many seconds (while a training runs). */
  refreshSeconds?: number;
  children?: Child;
}

/** The shell of every page: the project's tabs, the notice of the last action, the one script and stylesheet. */
export function Page(props: PageProps) {
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="csrf-token" content={props.token} />
          {props.refreshSeconds ? <meta http-equiv="refresh" content={String(props.refreshSeconds)} /> : null}
          <title>{`${props.title} - Headstart`}</title>
          <link rel="stylesheet" href="/ui/assets/dashboard.css" />
          <script src="/ui/assets/dashboard.js" defer />
        </head>
        <body>
          <header>
            <a class="brand" href="/ui/">
              Headstart
            </a>
            {props.project ? (
              <nav aria-label="project pages">
                <span class="project-name">{props.project}</span>
                {PAGES.map(([page, name]) => (
                  <a
                    href={`/ui/p/${props.project}/${page}`}
                    class={props.active === page ? 'active' : undefined}
                    aria-current={props.active === page ? 'page' : undefined}
                  >
                    {name}
                  </a>
                ))}
              </nav>
            ) : null}
          </header>
          <main>
            {props.notice ? (
              <p class={`notice ${props.notice.kind}`} role="status">
                {props.notice.text}
              </p>
            ) : null}
            <h1>{props.title}</h1>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** The hidden field every form carries. */
export const Csrf = (props: { token: string }) => <input type="hidden" name="_csrf" value={props.token} />;

export const fixed = (n: number | undefined | null, digits = 3) =>
  n === undefined || n === null || Number.isNaN(n) ? '-' : n.toFixed(digits);

/** A lazily loaded thumbnail of an upload, a review item or a quarantined copy. */
export function Thumb(props: { project: string; src: { key: string } | { review: string }; alt: string }) {
  const q = 'key' in props.src ? `key=${encodeURIComponent(props.src.key)}` : `review=${props.src.review}`;
  return (
    <img
      class="thumb"
      loading="lazy"
      decoding="async"
      width="112"
      height="112"
      src={`/ui/p/${props.project}/thumb?${q}`}
      alt={props.alt}
    />
  );
}

/**
 * What an upload or a review item looks like on a page: a photo's thumbnail, or a text's words. A review item's
 * text comes with its record; an upload's is fetched by the script (`data-text-src`), as thumbnails load lazily.
 */
export function Sample(props: {
  project: string;
  src: { key: string } | { review: string };
  alt: string;
  /** A text review item's text. */
  text?: string | undefined;
}) {
  if (props.text !== undefined) return <blockquote class="text-sample">{props.text}</blockquote>;
  if (!('key' in props.src) || modalityOfKey(props.src.key) !== 'text') return <Thumb {...props} />;
  return (
    <blockquote
      class="text-sample"
      data-text-src={`/ui/p/${props.project}/text?key=${encodeURIComponent(props.src.key)}`}
      title={props.alt}
    >
      …
    </blockquote>
  );
}

/** "photos" or "texts", by what a project's keys are. */
export const nounOf = (keys: readonly string[], n: number) =>
  `${n} ${keys.length > 0 && modalityOfKey(keys[0]!) === 'text' ? 'texts' : 'photos'}`;
