ShardedJobs.Shop_Billing_Invoices.g.cs
ShardedJobs.Shop_Stock_Mid.g.cs
ShardedJobs.Shop_Stock_Restock.g.cs
ShardedJobs.g.cs
