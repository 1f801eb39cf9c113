ShardedJobs.Shop_RegionSync.g.cs
ShardedJobs.g.cs
