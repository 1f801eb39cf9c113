ShardedJobs.Shop_Nested_Holder_Deep.g.cs
ShardedJobs.Shop_Nested_Outer_Reporter__Job.g.cs
ShardedJobs.g.cs
