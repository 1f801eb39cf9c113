using Xunit;

// These tests mostly wait on real time (sessions expiring, fires coming): run more of them at once than there are cores.
[assembly: CollectionBehavior(MaxParallelThreads = 8)]
