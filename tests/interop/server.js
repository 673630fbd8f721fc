// A small node-opcua server with a few changing variables, so the edge agent is tested
// against an OPC UA implementation we did not write. Usage: node server.js <port>
const { OPCUAServer, Variant, DataType, StatusCodes } = require("node-opcua");

(async () => {
  const port = parseInt(process.argv[2] || "4840", 10);
  const server = new OPCUAServer({ port, resourcePath: "/", buildInfo: { productName: "interop" } });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace("urn:plantkpi:interop");
  const machine = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Press1" });
  let t = 0;
  const make = (name, dataType, value) => ns.addVariable({
    componentOf: machine, nodeId: `s=Press1.${name}`, browseName: name, dataType,
    value: { get: () => new Variant({ dataType: DataType[dataType], value: value() }) },
    minimumSamplingInterval: 100,
  });
  make("State", "String", () => (Math.floor(t / 5) % 4 === 3 ? "IDLE" : "RUNNING"));
  make("Force", "Double", () => 40 + 5 * Math.sin(t / 3));
  make("Count", "Int32", () => t);
  setInterval(() => { t += 1; }, 500);
  await server.start();
  console.log(`READY ${server.getEndpointUrl()}`);
  process.on("SIGTERM", async () => { await server.shutdown(100); process.exit(0); });
})();
