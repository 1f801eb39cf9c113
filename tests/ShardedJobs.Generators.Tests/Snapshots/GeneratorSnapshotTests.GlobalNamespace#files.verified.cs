ShardedJobs.Cleanup.g.cs
ShardedJobs.g.cs
