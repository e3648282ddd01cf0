import Glibc
import OneoSandbox
import OneoWire

/// The executors that run our own code, as they serve inside their jails.
enum JailedExecutor {
    /// The options the launcher passes into the jail, per tool.
    static func passedOptions(_ tool: String) -> [String] {
        switch tool {
        case "web_search": ["backend"]
        case "file_search": ["database-name", "database-user"]
        default: []
        }
    }

    static func serve(tool: String, options: [String: String]) -> Int32 {
        // Only ever the first process of a jail's pid namespace: run by hand outside one, this
        // mode would parse the outside world unconfined, so it refuses.
        guard getpid() == 1 else {
            Log.line("refusing to run: --inside jail is for the launcher's jails only")
            return 78
        }
        // First: what only the start needed (execveat of our own program) is locked away.
        do {
            try SeccompProgram.lockAfterStart(options["lock"].map { $0.split(separator: ",").map(String.init) } ?? [])
        } catch {
            Log.line("refusing to run: locking the start's system calls failed: \(error)")
            return 78
        }
        // Descriptors come only with egress grants, from the router.
        let socket = FrameSocket(descriptor: FrameSocket.childDescriptor, acceptsDescriptors: true)
        switch tool {
        case "web_search", "image_generation":
            HTTPClient.setUp()
            let client: HTTPClient
            do {
                client = try HTTPClient()
            } catch {
                Log.line("refusing to run: \(error)")
                return 71
            }
            if tool == "web_search" {
                guard let backend = options["backend"] else { return 2 }
                let search = WebSearch(backend: backend, client: client)
                return ExecutorLoop(socket: socket, tool: tool, handle: { request in
                    try search.run(arguments: request.arguments, egress: Egress(socket: socket, call: request.id))
                }, afterEach: {}).run()
            }
            let images = ImageGeneration(client: client)
            return ExecutorLoop(socket: socket, tool: tool, handle: { request in
                try images.run(arguments: request.arguments, credential: request.credential, egress: Egress(socket: socket, call: request.id))
            }, afterEach: {}).run()
        case "file_search":
            guard let database = options["database-name"], let user = options["database-user"] else { return 2 }
            // The socket the policy binds at /run/postgresql/.s.PGSQL.5432.
            let search = FileSearch(socketDirectory: "/run/postgresql", database: database, user: user)
            return ExecutorLoop(socket: socket, tool: tool, handle: { request in
                try search.run(arguments: request.arguments, access: request.files)
            }, afterEach: {}).run()
        default:
            Log.line("unknown tool \(tool)")
            return 2
        }
    }
}
