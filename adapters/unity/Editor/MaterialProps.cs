// Canonical material -> the standard shader properties of URP/HDRP Lit and
// the Built-in Standard shader. Colours are linear in the canonical model;
// Material.SetColor takes gamma-space colours (Unity converts them in a
// linear project), hence `.gamma`. Roughness is 1 - smoothness.
using UnityEngine;
using UMaterial = UnityEngine.Material;

namespace VibeSync.Unity
{
    public static class MaterialProps
    {
        public static void Apply(UMaterial mat, VibeSync.Material m)
        {
            var baseColor = new Color((float)m.BaseColor[0], (float)m.BaseColor[1], (float)m.BaseColor[2], (float)m.BaseColor[3]).gamma;
            if (mat.HasProperty("_BaseColor")) mat.SetColor("_BaseColor", baseColor);  // URP, HDRP
            if (mat.HasProperty("_Color")) mat.SetColor("_Color", baseColor);          // Built-in
            float smoothness = 1f - (float)m.Roughness;
            if (mat.HasProperty("_Smoothness")) mat.SetFloat("_Smoothness", smoothness);  // URP, HDRP
            if (mat.HasProperty("_Glossiness")) mat.SetFloat("_Glossiness", smoothness);  // Built-in
            if (mat.HasProperty("_Metallic")) mat.SetFloat("_Metallic", (float)m.Metallic);
            float k = (float)m.EmissionStrength;
            var emission = new Color((float)m.Emission[0] * k, (float)m.Emission[1] * k, (float)m.Emission[2] * k, 1f);
            bool glows = k > 0 && (m.Emission[0] > 0 || m.Emission[1] > 0 || m.Emission[2] > 0);
            if (mat.HasProperty("_EmissionColor")) mat.SetColor("_EmissionColor", emission);  // URP, Built-in
            if (mat.HasProperty("_EmissiveColor")) mat.SetColor("_EmissiveColor", emission);  // HDRP
            if (glows) mat.EnableKeyword("_EMISSION");
            else mat.DisableKeyword("_EMISSION");
        }

        /// <summary>The ten canonical material values in hash order.</summary>
        public static double[] ToValues(VibeSync.Material m)
        {
            return new[]
            {
                m.BaseColor[0], m.BaseColor[1], m.BaseColor[2], m.BaseColor[3], m.Roughness, m.Metallic,
                m.Emission[0], m.Emission[1], m.Emission[2], m.EmissionStrength,
            };
        }

        public static VibeSync.Material FromValues(double[] v)
        {
            if (v == null || v.Length != 10) return VibeSync.Material.Default();
            return new VibeSync.Material
            {
                BaseColor = new[] { v[0], v[1], v[2], v[3] },
                Roughness = v[4],
                Metallic = v[5],
                Emission = new[] { v[6], v[7], v[8] },
                EmissionStrength = v[9],
            };
        }
    }
}
