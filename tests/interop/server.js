// A small node-opcua server with a few changing variables, so the edge agent is tested
// against an OPC UA implementation we did not write. Usage: node server.js <port>
// Options (environment), all optional; without them the server is the plain interop one:
//   INTEROP_EXTRA_NAMESPACE=<uri>   register this namespace first (shifts the index of ours,
//                                   as a restarted server with another configuration would)
//   INTEROP_MAX_NODES_PER_READ=<n>  enforced operation limits (BadTooManyOperations above),
//   INTEROP_MAX_ITEMS_PER_CALL=<n>  published in ServerCapabilities/OperationLimits
//   INTEROP_MAX_NODES_PER_BROWSE=<n>, INTEROP_MAX_NODES_PER_TRANSLATE=<n>  the same
//   INTEROP_UNPUBLISHED_LIMITS=1    enforce those limits but remove their OperationLimits
//                                   nodes (a server that does not publish what it enforces)
//   INTEROP_PRESSES=<n>             machines Press1..Press<n> (default 1)
//   INTEROP_TICK_MS=<ms>            how often the values advance (default 500)
//   INTEROP_PKI=<dir>               secured: only Basic256Sha256, Aes128_Sha256_RsaOaep and
//                                   Aes256_Sha256_RsaPss with Sign/SignAndEncrypt; PKI folder
//                                   <dir> (own/, trusted/certs/, rejected/), unknown client
//                                   certificates refused (put them in trusted/certs/)
//   INTEROP_USERS=<user>:<password> secured: that user only, no anonymous sessions
const { OPCUAServer, Variant, DataType, OPCUACertificateManager, SecurityPolicy, MessageSecurityMode } = require("node-opcua");

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
    port,
    resourcePath: "/",
    buildInfo: { productName: "interop" },
    serverCapabilities: {
      operationLimits: {
        maxNodesPerRead: limit("INTEROP_MAX_NODES_PER_READ"),
        maxMonitoredItemsPerCall: limit("INTEROP_MAX_ITEMS_PER_CALL"),
        maxNodesPerBrowse: limit("INTEROP_MAX_NODES_PER_BROWSE"),
        maxNodesPerTranslateBrowsePathsToNodeIds: limit("INTEROP_MAX_NODES_PER_TRANSLATE"),
      },
    },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  if (env.INTEROP_UNPUBLISHED_LIMITS) {
    // MaxNodesPerRead, MaxNodesPerBrowse, MaxNodesPerTranslate..., MaxMonitoredItemsPerCall
    for (const id of ["i=11705", "i=11710", "i=11712", "i=11714"]) {
      const node = addressSpace.findNode(id);
      if (node) addressSpace.deleteNode(node);
    }
  }
  if (env.INTEROP_EXTRA_NAMESPACE) addressSpace.registerNamespace(env.INTEROP_EXTRA_NAMESPACE);
  const ns = addressSpace.registerNamespace("urn:plantkpi:interop");
  let t = 0;
  const presses = parseInt(env.INTEROP_PRESSES || "1", 10);
  for (let p = 1; p <= presses; p++) {
    const name = `Press${p}`;
    const machine = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: name });
    const make = (signal, dataType, value) => ns.addVariable({
      componentOf: machine, nodeId: `s=${name}.${signal}`, browseName: signal, dataType,
      value: { get: () => new Variant({ dataType: DataType[dataType], value: value() }) },
      minimumSamplingInterval: 50,
    });
    make("State", "String", () => (Math.floor(t / 5) % 4 === 3 ? "IDLE" : "RUNNING"));
    make("Force", "Double", () => 40 + 5 * Math.sin(t / 3) + p);
    make("Count", "Int32", () => t);
    // An analog item with an engineering range 0..1000, for percent deadbands.
    ns.addAnalogDataItem({
      componentOf: machine, nodeId: `s=${name}.Level`, browseName: "Level", dataType: "Double",
      engineeringUnitsRange: { low: 0, high: 1000 },
      value: { get: () => new Variant({ dataType: DataType.Double, value: t % 1000 }) },
      minimumSamplingInterval: 50,
    });
  }
  setInterval(() => { t += 1; }, parseInt(env.INTEROP_TICK_MS || "500", 10));
  await server.start();
  console.log(`READY ${server.getEndpointUrl()}`);
  process.on("SIGTERM", async () => { await server.shutdown(100); process.exit(0); });
})();
