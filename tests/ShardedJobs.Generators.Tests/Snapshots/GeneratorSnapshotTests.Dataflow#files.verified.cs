ShardedJobs.Shop_Feeds_OrderFeed.g.cs
ShardedJobs.g.cs
