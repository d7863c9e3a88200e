// A self-contained test runner (no NuGet, no NUnit): every public method
// marked [Test] on a public class is run on a fresh instance. Prints one line
// per test and the closing line "N passed, M failed"; exits non-zero on any
// failure or when no test ran. Usage: tests.exe <repo-root> [name-filter]
// (tests.exe --live <pairing> <engine> runs LiveEngine.cs instead.)
// Classes marked [RealSdk] need the real SDK library and run only (and
// alone) when VIBESYNC_TEST_REAL_SDK=1; the others need the fake.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;

namespace VibeSync.Tests
{
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute { }

    /// <summary>The class's tests load the real SDK library, not Tests~/fake-sdk.</summary>
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class RealSdkAttribute : Attribute { }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string m) : base(m) { }
    }

    public static class Assert
    {
        public static void True(bool c, string what)
        {
            if (!c) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
        }

        public static void Near(double expected, double actual, double tol, string what)
        {
            if (!(Math.Abs(expected - actual) <= tol))
                throw new AssertionException(what + ": expected " + expected.ToString("R") + " ± " + tol + ", got " + actual.ToString("R"));
        }

        public static T Throws<T>(Action a, string what) where T : Exception
        {
            try { a(); }
            catch (T e) { return e; }
            catch (Exception e) { throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message); }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }

    public static class Runner
    {
        /// <summary>The repository root (first argument), for the shared test vectors.</summary>
        public static string RepoRoot = ".";

        public static int Main(string[] args)
        {
            // The live engine of host/vibesync/tests/unity_live.rs (LiveEngine.cs), not a test run.
            if (args.Length == 3 && args[0] == "--live") return LiveEngine.Run(args[1], args[2]);
            if (args.Length > 0) RepoRoot = args[0];
            string filter = args.Length > 1 ? args[1] : null;
            bool realSdk = Environment.GetEnvironmentVariable("VIBESYNC_TEST_REAL_SDK") == "1";
            int passed = 0, failed = 0;
            var tests = Assembly.GetExecutingAssembly().GetTypes()
                .Where(t => t.IsPublic && t.IsClass && (t.GetCustomAttributes(typeof(RealSdkAttribute), false).Length > 0) == realSdk)
                .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Select(m => new { t, m }))
                .Where(x => x.m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0)
                .OrderBy(x => x.t.Name, StringComparer.Ordinal).ThenBy(x => x.m.Name, StringComparer.Ordinal);
            foreach (var x in tests)
            {
                string name = x.t.Name + "." + x.m.Name;
                if (filter != null && name.IndexOf(filter, StringComparison.Ordinal) < 0) continue;
                try
                {
                    x.m.Invoke(Activator.CreateInstance(x.t), null);
                    passed++;
                    Console.WriteLine("ok   " + name);
                }
                catch (TargetInvocationException e)
                {
                    failed++;
                    var inner = e.InnerException ?? e;
                    Console.WriteLine("FAIL " + name + ": " + inner.GetType().Name + ": " + inner.Message);
                    if (!(inner is AssertionException)) Console.WriteLine(inner.StackTrace);
                }
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }
    }
}
