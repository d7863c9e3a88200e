// Conversion between the canonical glTF frame (RH, +Y up) and Unity's
// (LH, +Y up): a mirror in X, its own inverse. Positions (x, y, z) ->
// (-x, y, z); the rotation axis is a pseudo-vector, so quaternions
// (x, y, z, w) -> (x, -y, -z, w); scales are unchanged. Exact: no rounding.
// Reference: adapters/canonical/src/frames.rs, docs/canonical-state.md.
namespace VibeSync
{
    public static class UnityFrame
    {
        public static Transform FromCanonical(Transform t)
        {
            return new Transform
            {
                Translation = new[] { -t.Translation[0], t.Translation[1], t.Translation[2] },
                Rotation = new[] { t.Rotation[0], -t.Rotation[1], -t.Rotation[2], t.Rotation[3] },
                Scale = new[] { t.Scale[0], t.Scale[1], t.Scale[2] },
            };
        }

        /// <summary>The mirror is its own inverse.</summary>
        public static Transform ToCanonical(Transform t)
        {
            return FromCanonical(t);
        }

        /// <summary>A whole object, engine frame -> canonical (a copy).</summary>
        public static SceneObject ObjectToCanonical(SceneObject engine)
        {
            if (engine == null) return null;
            var c = engine.Clone();
            c.Transform = ToCanonical(engine.Transform);
            return c;
        }
    }
}
