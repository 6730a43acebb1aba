export declare const RECIPE: string;
export declare function renderRecipe(opts: { nodes: readonly string[]; listen: string }): string;
export declare function renderNginxConf(opts: { nodes: readonly string[]; listen: string; prefix: string }): string;
export declare function nginxBinary(): string;
