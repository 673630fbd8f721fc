// A small node-opcua server with a few changing variables, so the edge agent is tested
// against an OPC UA implementation we did not write. Usage: node server.js <port>
// Options (environment), all optional; without them the server is the plain interop one:
//   INTEROP_EXTRA_NAMESPACE=<uri>   register this namespace first (shifts the index of ours,
//                                   as a restarted server with another configuration would)
//   INTEROP_MAX_NODES_PER_READ=<n>  enforced operation limits (BadTooManyOperations above),
//   INTEROP_MAX_ITEMS_PER_CALL=<n>  published in ServerCapabilities/OperationLimits
//   INTEROP_MAX_NODES_PER_BROWSE=<n>, INTEROP_MAX_NODES_PER_TRANSLATE=<n>  the same
//   INTEROP_MAX_NODES_PER_HISTORY_READ=<n>  MaxNodesPerHistoryReadData, the same (HistoryRead of
//                                   more nodes: a ServiceFault BadTooManyOperations). Unset:
//                                   node-opcua's default 1000, published and enforced. node-opcua
//                                   also checks HistoryRead against MaxNodesPerRead and against
//                                   MaxNodesPerHistoryReadEvents (default 1000, even for data)
//   INTEROP_UNPUBLISHED_LIMITS=1    enforce those limits but remove their OperationLimits
//                                   nodes (a server that does not publish what it enforces);
//                                   MaxNodesPerHistoryReadData only when set by the option above
//   INTEROP_PRESSES=<n>             machines Press1..Press<n> (default 1)
//   INTEROP_TICK_MS=<ms>            how often the values advance (default 500)
//   INTEROP_PKI=<dir>               secured: only Basic256Sha256, Aes128_Sha256_RsaOaep and
//                                   Aes256_Sha256_RsaPss with Sign/SignAndEncrypt; PKI folder
//                                   <dir> (own/, trusted/certs/, rejected/), unknown client
//                                   certificates refused (put them in trusted/certs/)
//   INTEROP_USERS=<user>:<password> secured: that user only, no anonymous sessions
//   INTEROP_MACHINES=1              also load the OPC Foundation companion nodesets (DI, IA,
//                                   Machinery, MachineTool, CNC, PackML) and add machines built
//                                   from their types, values advancing with the tick:
//                                   Objects/Machines/Mill1 (MachineToolType) and Press7 (a plain
//                                   40001 machine), Objects/CncInterface, Objects/Filler1 (PackML,
//                                   our enumerations FillerUnitMode/EnumValues and
//                                   FillerStateEnum/EnumStrings); see buildMachines below
//   INTEROP_HISTORY=1               Historical Access (HistoryReadRaw) on every PressN's Force,
//                                   Count and Level: Historizing true, HistoryRead in AccessLevel
//                                   and UserAccessLevel (CurrentRead | HistoryRead: not writable),
//                                   an "HA Configuration" object. Their values are then written
//                                   at each tick (setValueFromSource, source timestamp = the tick)
//                                   instead of computed by getters (a getter's value reaches the
//                                   history only when something reads it), and the last
//                                   HISTORY_MAX_ONLINE_VALUES of each are kept. State has no
//                                   history (HistoryRead: BadHistoryOperationUnsupported)
const {
  OPCUAServer, Variant, DataType, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode,
  nodesets, promoteToStateMachine, StatusCodes,
} = require("node-opcua");

// Online history per variable with INTEROP_HISTORY: 10 minutes at INTEROP_TICK_MS=100 is 6000
// values; 10000 is 16 minutes at 100 ms (83 at the default 500 ms). Older values are dropped.
const HISTORY_MAX_ONLINE_VALUES = 10000;

// MachineTool requires the Machinery job model (ISA95 job control, Machinery/Jobs) besides DI,
// IA and Machinery; the loader orders the list by dependency itself.
const MACHINE_NODESETS = ["standard", "di", "ia", "machinery", "isa95JobControl", "machineryJobs",
  "machineTool", "cnc", "packML"];

(async () => {
  const port = parseInt(process.argv[2] || "4840", 10);
  const env = process.env;
  const limit = (name) => parseInt(env[name] || "0", 10);
  const secured = {};
  if (env.INTEROP_PKI) {
    const serverCertificateManager = new OPCUACertificateManager({
      rootFolder: env.INTEROP_PKI, automaticallyAcceptUnknownCertificate: false,
    });
    await serverCertificateManager.initialize();
    Object.assign(secured, {
      serverCertificateManager,
      securityPolicies: [SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep,
        SecurityPolicy.Aes256_Sha256_RsaPss],
      securityModes: [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    });
  }
  if (env.INTEROP_USERS) {
    const [user, password] = env.INTEROP_USERS.split(":");
    Object.assign(secured, {
      allowAnonymous: false,
      userManager: { isValidUser: (name, secret) => name === user && secret === password },
    });
  }
  const server = new OPCUAServer({
    ...secured,
    // `nodesets` is the current name of the deprecated `nodeset_filename` (same file paths)
    ...(env.INTEROP_MACHINES ? { nodesets: MACHINE_NODESETS.map((name) => nodesets[name]) } : {}),
    port,
    resourcePath: "/",
    buildInfo: { productName: "interop" },
    serverCapabilities: {
      operationLimits: {
        maxNodesPerRead: limit("INTEROP_MAX_NODES_PER_READ"),
        maxMonitoredItemsPerCall: limit("INTEROP_MAX_ITEMS_PER_CALL"),
        maxNodesPerBrowse: limit("INTEROP_MAX_NODES_PER_BROWSE"),
        maxNodesPerTranslateBrowsePathsToNodeIds: limit("INTEROP_MAX_NODES_PER_TRANSLATE"),
        // left out when unset: node-opcua's default (1000) stays, as before this option
        ...(env.INTEROP_MAX_NODES_PER_HISTORY_READ
          ? { maxNodesPerHistoryReadData: limit("INTEROP_MAX_NODES_PER_HISTORY_READ") } : {}),
      },
    },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  if (env.INTEROP_UNPUBLISHED_LIMITS) {
    // MaxNodesPerRead, MaxNodesPerBrowse, MaxNodesPerTranslate..., MaxMonitoredItemsPerCall
    const ids = ["i=11705", "i=11710", "i=11712", "i=11714"];
    // MaxNodesPerHistoryReadData: only when the limit is ours, not node-opcua's default
    if (env.INTEROP_MAX_NODES_PER_HISTORY_READ) ids.push("i=12165");
    for (const id of ids) {
      const node = addressSpace.findNode(id);
      if (node) addressSpace.deleteNode(node);
    }
  }
  if (env.INTEROP_EXTRA_NAMESPACE) addressSpace.registerNamespace(env.INTEROP_EXTRA_NAMESPACE);
  const ns = addressSpace.registerNamespace("urn:plantkpi:interop");
  let t = 0;
  const presses = parseInt(env.INTEROP_PRESSES || "1", 10);
  // With INTEROP_HISTORY, the writers of the historizing variables, called at each tick.
  const historized = [];
  // A PressN variable (`add` is ns.addVariable or ns.addAnalogDataItem). Its value comes from a
  // getter, except for the historizing ones with INTEROP_HISTORY: these are written at each tick
  // instead (a getter's value reaches the history only when something reads the variable) and
  // read-only, CurrentRead, to which installHistoricalDataNode adds HistoryRead.
  const addSignal = (add, options, dataType, value, historizing) => {
    if (!(env.INTEROP_HISTORY && historizing)) {
      return add({
        ...options,
        value: { get: () => new Variant({ dataType: DataType[dataType], value: value() }) },
      });
    }
    const variable = add({ ...options, accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" });
    const write = (timestamp) => variable.setValueFromSource(
      { dataType: DataType[dataType], value: value() }, StatusCodes.Good, new Date(timestamp));
    write(Date.now()); // the value at t = 0, recorded by installHistoricalDataNode
    addressSpace.installHistoricalDataNode(variable, { maxOnlineValues: HISTORY_MAX_ONLINE_VALUES });
    historized.push(write);
    return variable;
  };
  for (let p = 1; p <= presses; p++) {
    const name = `Press${p}`;
    const machine = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: name });
    const make = (signal, dataType, value, historizing = false) => addSignal(
      (options) => ns.addVariable(options),
      { componentOf: machine, nodeId: `s=${name}.${signal}`, browseName: signal, dataType,
        minimumSamplingInterval: 50 },
      dataType, value, historizing);
    make("State", "String", () => (Math.floor(t / 5) % 4 === 3 ? "IDLE" : "RUNNING"));
    make("Force", "Double", () => 40 + 5 * Math.sin(t / 3) + p, true);
    make("Count", "Int32", () => t, true);
    // An analog item with an engineering range 0..1000, for percent deadbands.
    addSignal((options) => ns.addAnalogDataItem(options), {
      componentOf: machine, nodeId: `s=${name}.Level`, browseName: "Level", dataType: "Double",
      engineeringUnitsRange: { low: 0, high: 1000 }, minimumSamplingInterval: 50,
    }, "Double", () => t % 1000, true);
  }
  const tickMachines = env.INTEROP_MACHINES ? buildMachines(addressSpace, ns) : () => {};
  tickMachines(t);
  setInterval(() => {
    t += 1;
    const now = Date.now(); // one source timestamp for all the values of a tick
    for (const write of historized) write(now);
    tickMachines(t);
  }, parseInt(env.INTEROP_TICK_MS || "500", 10));
  await server.start();
  console.log(`READY ${server.getEndpointUrl()}`);
  process.on("SIGTERM", async () => { await server.shutdown(100); process.exit(0); });
})();

// Machines built from the companion specifications' own ObjectTypes, so browse names, type
// definitions and enumeration DataTypes are the real ones. Our instances and browse names are
// in `ns`; the children the types bring keep their specification browse names. Returns the
// function that advances the values to tick t.
function buildMachines(addressSpace, ns) {
  const nsOf = (uri) => {
    const index = addressSpace.getNamespaceIndex(uri);
    if (index < 0) throw new Error(`nodeset not loaded: ${uri}`);
    return index;
  };
  const machinery = nsOf("http://opcfoundation.org/UA/Machinery/");
  const machineTool = nsOf("http://opcfoundation.org/UA/MachineTool/");
  const cnc = nsOf("http://opcfoundation.org/UA/CNC");
  const packML = nsOf("http://opcfoundation.org/UA/PackML/");
  const objects = addressSpace.rootFolder.objects;
  const objectType = (name, index) => {
    const type = addressSpace.findObjectType(name, index);
    if (!type) throw new Error(`no ObjectType ${name} in namespace ${index}`);
    return type;
  };
  const child = (node, ...path) => path.reduce((parent, name) => {
    const found = parent.getChildByName(name);
    if (!found) throw new Error(`${parent.browseName.toString()} has no child ${name}`);
    return found;
  }, node);
  const set = (variable, dataType, value) => variable.setValueFromSource({ dataType, value });
  const stateMachine = (node, ...path) => promoteToStateMachine(child(node, ...path));
  // String NodeIds are given to the roots only: node-opcua names the children after them,
  // <parent>-<BrowseName> (ns=<ours>;s=Mill1-Monitoring-MachineTool-OperationMode).

  // Machinery "Machines" folder (OPC 40001-1): the nodeset defines it as an instance.
  const machines = addressSpace.findNode(`ns=${machinery};i=1001`)
    || ns.addFolder(objects, { browseName: { name: "Machines", namespaceIndex: machinery } });

  // --- Mill1: OPC 40501 machine tool. MachineryBuildingBlocks holds the same state machine
  // nodes as Monitoring/MachineTool (HasAddIn from both), as the MachineTool nodeset models it.
  const mill = objectType("MachineToolType", machineTool).instantiate({
    namespace: ns, nodeId: "s=Mill1", browseName: { name: "Mill1", namespaceIndex: ns.index },
    organizedBy: machines,
    optionals: ["MachineryBuildingBlocks.MachineryItemState",
      "MachineryBuildingBlocks.MachineryOperationMode"],
  });
  const millState = stateMachine(mill, "MachineryBuildingBlocks", "MachineryItemState");
  const millMode = stateMachine(mill, "MachineryBuildingBlocks", "MachineryOperationMode");
  const millOperationMode = child(mill, "Monitoring", "MachineTool", "OperationMode");
  const millProgram = stateMachine(mill, "Production", "ActiveProgram", "State");
  const identification = child(mill, "Identification");
  set(child(identification, "Manufacturer"), DataType.LocalizedText, { text: "plantkpi interop" });
  set(child(identification, "SerialNumber"), DataType.String, "MT-0001");
  set(child(identification, "ProductInstanceUri"), DataType.String, "urn:plantkpi:interop:Mill1");
  const channel = objectType("ChannelMonitoringType", machineTool).instantiate({
    namespace: ns, browseName: { name: "Channel1", namespaceIndex: ns.index },
    componentOf: child(mill, "Monitoring"),
  });
  set(child(channel, "Name"), DataType.String, "Channel1");
  const channelState = child(channel, "ChannelState");
  const channelMode = child(channel, "ChannelMode");

  // --- Press7: a plain OPC 40001-1 machine (Machinery defines no machine ObjectType): an
  // object with the MachineryBuildingBlocks folder holding the two state machines as add-ins.
  const press = ns.addObject({ organizedBy: machines, nodeId: "s=Press7", browseName: "Press7" });
  const blocks = ns.addObject({
    componentOf: press, typeDefinition: "FolderType",
    browseName: { name: "MachineryBuildingBlocks", namespaceIndex: machinery },
  });
  const addIn = (type, name) => promoteToStateMachine(objectType(type, machinery).instantiate({
    namespace: ns, addInOf: blocks, browseName: { name, namespaceIndex: machinery },
  }));
  const pressState = addIn("MachineryItemState_StateMachineType", "MachineryItemState");
  const pressMode = addIn("MachineryOperationModeStateMachineType", "MachineryOperationMode");
  const force = ns.addVariable({ componentOf: press, browseName: "Force", dataType: "Double" });

  // --- OPC 40502 CNC interface with one channel. The mandatory children come along
  // (axis/spindle lists, channel positions, overrides, program data), left at their defaults.
  const cncInterface = objectType("CncInterfaceType", cnc).instantiate({
    namespace: ns, nodeId: "s=CncInterface",
    browseName: { name: "CncInterface", namespaceIndex: cnc }, organizedBy: objects,
  });
  for (const [name, value] of [["VendorName", "plantkpi interop"], ["VendorRevision", "1"],
    ["Version", "1.00"]]) set(child(cncInterface, name), DataType.String, value);
  const cncChannel = objectType("CncChannelType", cnc).instantiate({
    namespace: ns, browseName: { name: "Channel1", namespaceIndex: ns.index },
    componentOf: child(cncInterface, "CncChannelList"),
  });
  // OPC 40502 names them ActOperationMode (CncOperationMode) and ActStatus (CncChannelStatus).
  const cncOperationMode = child(cncChannel, "ActOperationMode");
  const cncChannelStatus = child(cncChannel, "ActStatus");

  // --- OPC 30050 PackML unit. UnitModeCurrent has the abstract DataType Enumeration: the server
  // defines the modes. Ours are numbered with gaps (EnumValues); the unit state uses a
  // zero-based EnumStrings enumeration, so clients meet both kinds.
  const filler = objectType("PackMLBaseObjectType", packML).instantiate({
    namespace: ns, nodeId: "s=Filler1", browseName: { name: "Filler1", namespaceIndex: ns.index },
    organizedBy: objects,
  });
  const unitModes = { Production: 1, Maintenance: 2, Manual: 3, Clean: 17 };
  const fillerUnitMode = ns.addEnumerationType({
    browseName: "FillerUnitMode",
    enumeration: Object.entries(unitModes).map(([displayName, value]) => ({ displayName, value })),
  });
  const fillerStates = ["Undefined", "Clearing", "Stopped", "Starting", "Idle", "Suspended",
    "Execute", "Stopping", "Aborting", "Aborted", "Holding", "Held", "Unholding", "Suspending",
    "Unsuspending", "Resetting", "Completing", "Complete"];
  const fillerStateEnum = ns.addEnumerationType({
    browseName: "FillerStateEnum", enumeration: fillerStates,
  });
  const status = child(filler, "Status");
  const unitModeCurrent = child(status, "UnitModeCurrent");
  unitModeCurrent.dataType = fillerUnitMode.nodeId;
  // PackML: the NodeId of the DataType that lists the unit modes this unit supports.
  set(child(status, "UnitSupportedModes"), DataType.NodeId, fillerUnitMode.nodeId);
  const stateCurrent = ns.addVariable({
    componentOf: status, browseName: "StateCurrent", dataType: fillerStateEnum.nodeId,
  });
  const curMachSpeed = child(status, "CurMachSpeed");
  // The PackML state is a hierarchy: BaseStateMachine (Aborted, Aborting, Cleared) > MachineState
  // (Clearing, Running, Stopped, Stopping) > ExecuteState (Idle, Starting, Execute, ...). A
  // sub-state machine whose parent state is not active has no current state.
  const baseState = stateMachine(filler, "BaseStateMachine");
  const machineState = stateMachine(filler, "BaseStateMachine", "MachineState");
  const executeState = stateMachine(filler, "BaseStateMachine", "MachineState", "ExecuteState");
  const setPackMLState = (state) => {
    const levels = ["Aborted", "Aborting"].includes(state) ? [state, null, null]
      : ["Clearing", "Stopped", "Stopping"].includes(state) ? ["Cleared", state, null]
        : ["Cleared", "Running", state];
    [baseState, machineState, executeState].forEach((sm, i) => sm.setState(levels[i]));
  };

  // Value sequences, one step per tick; every variable changes within a few ticks.
  const cycle = (t, steps) => steps[t % steps.length];
  const fillerStateCycle = ["Stopped", "Resetting", "Idle", "Starting", "Execute", "Execute",
    "Execute", "Suspended", "Execute", "Stopping"];
  return (t) => {
    // Mill1: Processing in Automatic for four ticks (executing three of them), then Setup in
    // Manual for two; the channel follows.
    const processing = t % 6 < 4;
    const executing = t % 6 < 3;
    millMode.setState(processing ? "Processing" : "Setup");
    millState.setState(executing ? "Executing" : "NotExecuting");
    millProgram.setState(executing ? "Running" : "Interrupted");
    set(millOperationMode, DataType.Int32, processing ? 1 : 0); // Automatic / Manual
    set(channelMode, DataType.Int32, processing ? 0 : 2); // Automatic / JogManual
    // ChannelState Active / Interrupted / Reset
    set(channelState, DataType.Int32, executing ? 0 : processing ? 1 : 2);
    // Press7: executing three ticks of four, in Setup during the fourth.
    const pressing = t % 4 < 3;
    pressState.setState(pressing ? "Executing" : "NotExecuting");
    pressMode.setState(pressing ? "Processing" : "Setup");
    set(force, DataType.Double, pressing ? 40 + 5 * Math.sin(t / 3) : 0);
    // CNC channel: Automatic (Active, then Interrupted), then Manual with the channel Reset.
    set(cncOperationMode, DataType.Int32, cycle(t, [2, 2, 2, 2, 0, 0])); // Automatic / Manual
    set(cncChannelStatus, DataType.Int32, cycle(t, [0, 0, 0, 1, 2, 2]));
    // Filler1: a unit mode every two ticks; the state walks a PackML sequence.
    set(unitModeCurrent, DataType.Int32, cycle(Math.floor(t / 2), Object.values(unitModes)));
    const state = cycle(t, fillerStateCycle);
    set(stateCurrent, DataType.Int32, fillerStates.indexOf(state));
    setPackMLState(state);
    set(curMachSpeed, DataType.Float, state === "Execute" ? 120 + (t % 7) : 0);
  };
}
