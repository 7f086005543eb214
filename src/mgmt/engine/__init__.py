"""The engine: runs resources in dependency order as events arrive (see scheduler),
with the shared file watcher, the converger and the agent that ties them to a graph
file and the world. Imported lazily by the CLI, so ``mgmt --version`` stays fast."""
