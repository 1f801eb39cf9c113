ShardedJobs.Shop_Jobs_OrderSync.g.cs
ShardedJobs.g.cs
