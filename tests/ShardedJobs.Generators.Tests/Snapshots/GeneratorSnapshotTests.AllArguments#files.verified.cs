ShardedJobs.Shop_OrderSync.g.cs
ShardedJobs.g.cs
