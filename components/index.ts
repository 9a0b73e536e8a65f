export * from "./config";
export * from "./remote-command";
export * from "./sentinel-agreement";
export * from "./server";
