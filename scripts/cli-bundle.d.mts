export declare const CLI_BUNDLE: string;
export declare function cliBundleText(root: string): Promise<string>;
