// Window > VibeSync: connection state, the PANIC banner, the busy reason, the
// pairing file, and the last transactions. Read-only views of the bootstrap.
using System.Collections.Generic;
using UnityEditor;
using UnityEngine;

namespace VibeSync.Unity
{
    public sealed class VibeSyncWindow : EditorWindow
    {
        [MenuItem("Window/VibeSync")]
        public static void Open() { GetWindow<VibeSyncWindow>("VibeSync"); }

        void OnInspectorUpdate() { Repaint(); }

        void OnGUI()
        {
            var status = VibeSyncEditor.Status;
            bool panic = VibeSyncEditor.Adapter.Frozen || (status != null && status.ContainsKey("panic") && status["panic"] is bool && (bool)status["panic"]);
            if (panic)
            {
                string why = VibeSyncEditor.Adapter.FreezeReason ?? (status != null ? status["panic_reason"] as string : null) ?? "unknown";
                EditorGUILayout.HelpBox("PANIC: the cluster is frozen (" + why + "). No change is applied until an operator resumes.", MessageType.Error);
            }
            string state = status != null && status.ContainsKey("state") ? status["state"] as string : (VibeSyncEditor.Connected ? "connecting" : "not connected");
            EditorGUILayout.LabelField("Connection", state);
            EditorGUILayout.LabelField("Engine name", VibeSyncEditor.EngineName);
            if (VibeSyncEditor.Adapter.BusyReason != null)
                EditorGUILayout.HelpBox("Busy: " + VibeSyncEditor.Adapter.BusyReason + " (host told; changes wait)", MessageType.Warning);
            if (VibeSyncEditor.LastError != null)
                EditorGUILayout.HelpBox(VibeSyncEditor.LastError, MessageType.Warning);

            var path = EditorGUILayout.TextField("Pairing file", VibeSyncEditor.PairingPath);
            if (path != VibeSyncEditor.PairingPath) VibeSyncEditor.PairingPath = path;
            EditorGUILayout.BeginHorizontal();
            if (!VibeSyncEditor.Connected && GUILayout.Button("Connect")) VibeSyncEditor.TryConnect(reattachOnly: false);
            if (VibeSyncEditor.Connected && GUILayout.Button("Disconnect")) VibeSyncEditor.Disconnect();
            EditorGUILayout.EndHorizontal();

            EditorGUILayout.Space();
            EditorGUILayout.LabelField("Last transactions", EditorStyles.boldLabel);
            IList<string> recent = VibeSyncEditor.Adapter.Recent;
            for (int i = recent.Count - 1; i >= 0; i--) EditorGUILayout.LabelField(recent[i]);
        }
    }
}
