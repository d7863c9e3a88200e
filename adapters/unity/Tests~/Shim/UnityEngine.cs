// API-SURFACE SHIM, NOT UNITY. Declares exactly the UnityEngine members the
// glue uses, with Unity's signatures, so Tests~/run.sh can compile Editor/
// and Components/ against the core without a Unity install. Bodies throw:
// nothing here ever runs. Never shipped (Unity ignores folders ending in ~).
// When the glue starts using a new Unity API, declare it here with the same
// signature as Unity's scripting reference.
using System;

namespace UnityEngine
{
    public class Object
    {
        public string name { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
    }

    public enum PrimitiveType { Sphere, Capsule, Cylinder, Cube, Plane, Quad }

    public enum LightType { Spot, Directional, Point, Area }

    public class Component : Object
    {
        public GameObject gameObject { get { throw new NotImplementedException(); } }
        public Transform transform { get { throw new NotImplementedException(); } }
        public T GetComponent<T>() { throw new NotImplementedException(); }
    }

    public class ScriptableObject : Object { }

    public class Behaviour : Component { }

    public class MonoBehaviour : Behaviour { }

    public sealed class GameObject : Object
    {
        public GameObject(string name) { }
        public GameObject(string name, params Type[] components) { }
        public Transform transform { get { throw new NotImplementedException(); } }
        public T GetComponent<T>() { throw new NotImplementedException(); }
        public T AddComponent<T>() where T : Component { throw new NotImplementedException(); }
        public static GameObject CreatePrimitive(PrimitiveType type) { throw new NotImplementedException(); }
    }

    public class Transform : Component
    {
        public Transform parent { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
        public Vector3 localPosition { get; set; }
        public Quaternion localRotation { get; set; }
        public Vector3 localScale { get; set; }
        public void SetParent(Transform parent, bool worldPositionStays) { throw new NotImplementedException(); }
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
    }

    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    }

    public struct Color
    {
        public float r, g, b, a;
        public Color(float r, float g, float b, float a) { this.r = r; this.g = g; this.b = b; this.a = a; }
        public Color gamma { get { throw new NotImplementedException(); } }
        public Color linear { get { throw new NotImplementedException(); } }
    }

    public sealed class Shader : Object
    {
        public static Shader Find(string name) { throw new NotImplementedException(); }
    }

    public class Material : Object
    {
        public Material(Shader shader) { }
        public Material(Material source) { }
        public bool HasProperty(string name) { throw new NotImplementedException(); }
        public void SetColor(string name, Color value) { throw new NotImplementedException(); }
        public void SetFloat(string name, float value) { throw new NotImplementedException(); }
        public void EnableKeyword(string keyword) { throw new NotImplementedException(); }
        public void DisableKeyword(string keyword) { throw new NotImplementedException(); }
    }

    public class Renderer : Component
    {
        public Material sharedMaterial { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
    }

    public sealed class Camera : Behaviour { }

    public sealed class MeshFilter : Component { }

    public sealed class Light : Behaviour
    {
        public LightType type { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
    }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DisallowMultipleComponent : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class ExecuteAlways : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute
    {
        public AddComponentMenu(string menuName) { }
    }

    public sealed class GUILayoutOption { }

    public class GUIStyle { }

    public static class GUILayout
    {
        public static bool Button(string text, params GUILayoutOption[] options) { throw new NotImplementedException(); }
    }
}
