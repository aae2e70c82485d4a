export * from './chart-load.js';
export * from './discover.js';
export * from './check.js';
export { imagesInManifests, type ManifestImage, type ManifestImageField } from './manifests.js';
export { resolveChart, renderChart, allInstances, type ChartInstance, type RenderResult, type RenderedTemplate } from './render.js';
export { annotatedImages, valuesImages, literalImages, type AnnotatedImage, type ValuesImage, type LiteralImage } from './sources.js';
export { applySet, userValues, parseValues, coalesceChartValues, type Values } from './values.js';
export * from './report.js';
