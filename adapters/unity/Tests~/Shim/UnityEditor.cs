// API-SURFACE SHIM, NOT UNITY: the UnityEditor members the glue uses, with
// Unity's signatures (see UnityEngine.cs in this folder). Never shipped.
using System;
using UnityEngine;

namespace UnityEditor
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class InitializeOnLoadAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MenuItem : Attribute
    {
        public MenuItem(string itemName) { }
    }

    public static class EditorApplication
    {
        public delegate void CallbackFunction();
        public static CallbackFunction update;
        public static event Action quitting;
        public static bool isCompiling { get { throw new NotImplementedException(); } }
        public static bool isUpdating { get { throw new NotImplementedException(); } }
        public static bool isPlayingOrWillChangePlaymode { get { throw new NotImplementedException(); } }
    }

    public static class AssemblyReloadEvents
    {
        public delegate void AssemblyReloadCallback();
        public static event AssemblyReloadCallback beforeAssemblyReload;
    }

    public enum ObjectChangeKind
    {
        None, ChangeScene, CreateGameObjectHierarchy, ChangeGameObjectStructureHierarchy, ChangeGameObjectStructure,
        ChangeGameObjectParent, ChangeGameObjectOrComponentProperties, DestroyGameObjectHierarchy, CreateAssetObject,
        DestroyAssetObject, ChangeAssetObjectProperties, UpdatePrefabInstances, ChangeChildrenOrder,
    }

    public struct ChangeGameObjectOrComponentPropertiesEventArgs
    {
        public int instanceId { get { throw new NotImplementedException(); } }
    }

    public struct ObjectChangeEventStream
    {
        public int length { get { throw new NotImplementedException(); } }
        public ObjectChangeKind GetEventType(int eventIdx) { throw new NotImplementedException(); }
        public void GetChangeGameObjectOrComponentPropertiesEvent(int eventIdx, out ChangeGameObjectOrComponentPropertiesEventArgs data) { throw new NotImplementedException(); }
    }

    public static class ObjectChangeEvents
    {
        public delegate void ObjectChangeEventsHandler(ref ObjectChangeEventStream stream);
        public static event ObjectChangeEventsHandler changesPublished;
    }

    public static class EditorUtility
    {
        public static UnityEngine.Object InstanceIDToObject(int instanceID) { throw new NotImplementedException(); }
    }

    public static class EditorPrefs
    {
        public static string GetString(string key, string defaultValue) { throw new NotImplementedException(); }
        public static void SetString(string key, string value) { throw new NotImplementedException(); }
    }

    public static class Undo
    {
        public static void IncrementCurrentGroup() { throw new NotImplementedException(); }
        public static void SetCurrentGroupName(string name) { throw new NotImplementedException(); }
        public static int GetCurrentGroup() { throw new NotImplementedException(); }
        public static void CollapseUndoOperations(int groupIndex) { throw new NotImplementedException(); }
        public static void RevertAllDownToGroup(int group) { throw new NotImplementedException(); }
        public static void RecordObject(UnityEngine.Object objectToUndo, string name) { throw new NotImplementedException(); }
        public static void RegisterCreatedObjectUndo(UnityEngine.Object objectToUndo, string name) { throw new NotImplementedException(); }
        public static void DestroyObjectImmediate(UnityEngine.Object objectToUndo) { throw new NotImplementedException(); }
        public static void SetTransformParent(Transform transform, Transform newParent, string name) { throw new NotImplementedException(); }
    }

    public static class Selection
    {
        public static UnityEngine.Object[] objects { get { throw new NotImplementedException(); } set { throw new NotImplementedException(); } }
    }

    public class SceneView : EditorWindow
    {
        public static SceneView lastActiveSceneView { get { throw new NotImplementedException(); } }
        public bool FrameSelected() { throw new NotImplementedException(); }
    }

    public class EditorWindow : ScriptableObject
    {
        public static T GetWindow<T>(string title) where T : EditorWindow { throw new NotImplementedException(); }
        public void Repaint() { throw new NotImplementedException(); }
    }

    public enum MessageType { None, Info, Warning, Error }

    public static class EditorStyles
    {
        public static GUIStyle boldLabel { get { throw new NotImplementedException(); } }
    }

    public static class EditorGUILayout
    {
        public static void HelpBox(string message, MessageType type) { throw new NotImplementedException(); }
        public static void LabelField(string label, params GUILayoutOption[] options) { throw new NotImplementedException(); }
        public static void LabelField(string label, string label2, params GUILayoutOption[] options) { throw new NotImplementedException(); }
        public static void LabelField(string label, GUIStyle style, params GUILayoutOption[] options) { throw new NotImplementedException(); }
        public static string TextField(string label, string text, params GUILayoutOption[] options) { throw new NotImplementedException(); }
        public static void BeginHorizontal(params GUILayoutOption[] options) { throw new NotImplementedException(); }
        public static void EndHorizontal() { throw new NotImplementedException(); }
        public static void Space() { throw new NotImplementedException(); }
    }
}
